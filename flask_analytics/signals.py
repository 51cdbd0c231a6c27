"""Blinker signals, sent with the app as sender (as Flask's own signals are).

Connect with ``event_recorded.connect(fn)`` or ``event_recorded.connect_via(app)(fn)``;
receivers run synchronously in the code path that sent the signal, so keep them short.

- ``event_recorded(app, event=row)``: an event was stored (or, in buffered mode, taken
  into the Redis buffer); ``row`` is the dict of its column values.
- ``event_dropped(app, event=row_or_none, reason=str)``: an event was not recorded, with
  the :class:`~flask_analytics.DropReason` value (``"bot"``, ``"duplicate"``...).
- ``day_aggregated(app, result=AggregationResult)``: a local day's rollups were committed.
- ``days_archived(app, result=ArchiveResult)``: an archive run moved raw events.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

event_recorded = _signals.signal("event-recorded")
event_dropped = _signals.signal("event-dropped")
day_aggregated = _signals.signal("day-aggregated")
days_archived = _signals.signal("days-archived")
