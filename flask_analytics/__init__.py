"""Privacy-first, cookieless, self-hosted web analytics inside your Flask app."""

from __future__ import annotations

from .core.clock import Clock as Clock
from .errors import AnalyticsError as AnalyticsError
from .errors import ConfigError as ConfigError
from .errors import DropEvent as DropEvent
from .errors import InvalidEvent as InvalidEvent
from .extension import Analytics as Analytics
from .ingest.pipeline import DropReason as DropReason
from .lifecycle.aggregate import AggregationRefused as AggregationRefused
from .models import DailyEventMixin as DailyEventMixin
from .models import DailyPageMixin as DailyPageMixin
from .models import DailyPageReferrerMixin as DailyPageReferrerMixin
from .models import EventMixin as EventMixin
from .reports.scope import Scope as Scope

__all__ = [
    "AggregationRefused",
    "Analytics",
    "AnalyticsError",
    "Clock",
    "ConfigError",
    "DailyEventMixin",
    "DailyPageMixin",
    "DailyPageReferrerMixin",
    "DropEvent",
    "DropReason",
    "EventMixin",
    "InvalidEvent",
    "Scope",
]
