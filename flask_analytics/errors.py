"""Exceptions raised by flask-analytics."""

from __future__ import annotations


class AnalyticsError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(AnalyticsError, ValueError):
    """An ``ANALYTICS_*`` setting is invalid; the message says which and how to fix it."""


class InvalidEvent(AnalyticsError, ValueError):
    """An event was rejected by validation; the message is safe to show to the client."""
