"""What the ingest pipeline needs from the app's state, as a protocol."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..core.context import Context

if TYPE_CHECKING:
    from .geo import CountryReader
    from .payload import Limits
    from .privacy import SaltStore
    from .sinks import Sink
    from .useragent import UserAgentInfo


class IngestContext(Context, Protocol):
    """One app's :class:`Context` plus the parts of its ingest pipeline."""

    salts: SaltStore
    limits: Limits
    geo_reader: CountryReader | None
    spam_domains: frozenset[str]
    parse_user_agent: Callable[[str], UserAgentInfo]
    #: Where browser events go: the direct sink, or the Redis buffer when configured.
    sink: Sink
    #: Where ``track()`` events go: always written before it returns.
    direct_sink: Sink
    #: ``match_endpoint(hostname, path)``: the Flask endpoint of a page, or None.
    match_endpoint: Callable[[str, str], str | None]
    steps: tuple[Callable[[Any, Any], Any], ...]

    def count_drops(self, dropped: Mapping[str, int]) -> None:
        """Add dropped events to the per-reason counters."""
        ...
