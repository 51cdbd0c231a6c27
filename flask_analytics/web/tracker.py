"""The browser tracker, server side: the script view and the ``analytics_script()`` tag.

``script_view`` serves ``static/analytics/tracker.min.js``, or its manual-pageview build
``tracker.manual.min.js`` (``?build=manual``), or the readable ``tracker.js`` (when
``app.debug`` or ``ANALYTICS_TRACKER_DEBUG`` is set, or ``?build=debug``), gzipped when
the browser accepts it, with a strong ETag from the content hash. ``analytics_script()`` writes
``<script defer src=".../script.js?v=<hash>" data-...>``: the versioned URL may be cached
for a year, because any change of the file changes the URL. Its ``fields=`` become
``data-fields``, a JSON object the tracker sends as top-level keys of every event (the
collect endpoint records those named in ``ANALYTICS_CLIENT_FIELDS``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from flask import Response, abort, current_app, has_request_context, request, url_for
from markupsafe import Markup

from ..errors import InvalidEvent
from ..ingest.payload import PROP_VALUE_MAX, STATUS_MAX, STATUS_MIN, check_custom
from ..models import EventMixin
from ..state import current_state
from . import STATIC_DIR
from .pageid import page_id, wants_page_id

#: Privacy modes of the tracker (``data-mode``).
MODES = ("strict", "balanced", "full")
#: Cache lifetime (s) of the versioned script URL: its content never changes.
VERSIONED_MAX_AGE = 365 * 24 * 3600
#: Cache lifetime (s) of any other script URL (hand-written tags, HTML cached before a deploy).
UNVERSIONED_MAX_AGE = 3600

_EXTENSION = re.compile(r"[a-z0-9]+(?:\.[a-z0-9]+)*")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: Keys ``fields=`` may not use: the built-in columns and the collect protocol's fields.
RESERVED_FIELDS = frozenset(EventMixin.__annotations__) | {"url", "offset_ms", "hash_routing"}
#: Largest whole number JavaScript keeps exactly.
_JS_SAFE_INT = 2**53
#: Events per request and ms a queued event waits for more, when not configured.
DEFAULT_BATCH_SIZE = 20
DEFAULT_BATCH_TIMEOUT_MS = 1000
#: Longest ``batch_timeout_ms``: queued events are sent when the page is hidden anyway,
#: and a longer wait only delays what the realtime page shows.
MAX_BATCH_TIMEOUT_MS = 60_000
#: ``?build=`` values of the script URL: the manual-pageview build, the readable source.
BUILDS = ("manual", "debug")


@dataclass(frozen=True)
class TrackerAsset:
    """One build of the tracker script, ready to serve."""

    body: bytes
    gzipped: bytes
    #: First 16 hex digits of the SHA-256 of ``body``: the ETag and the ``?v=`` value.
    version: str


def _debug() -> bool:
    return bool(current_app.debug or current_app.config["ANALYTICS_TRACKER_DEBUG"])


def tracker_asset(debug: bool = False, manual: bool = False) -> TrackerAsset:
    """The minified tracker (its manual-pageview build when ``manual``), or the readable
    source when ``debug`` (it serves both); re-read when it changes."""
    name = "tracker.js" if debug else "tracker.manual.min.js" if manual else "tracker.min.js"
    path = STATIC_DIR / name
    stat = path.stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> TrackerAsset:
    # Keyed by modification time and size, so an edited file (debug mode) is re-read.
    body = Path(path).read_bytes()
    return TrackerAsset(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        version=hashlib.sha256(body).hexdigest()[:16],
    )


def script_view() -> Response:
    """``GET`` the tracker script (registered by the collect blueprint)."""
    build = request.args.get("build")
    if build is not None and build not in BUILDS:
        abort(404, f"build must be one of {', '.join(BUILDS)}")
    debug = _debug() or build == "debug"
    asset = tracker_asset(debug, manual=build == "manual")
    gzipped = request.accept_encodings["gzip"] > 0
    response = Response(asset.gzipped if gzipped else asset.body, mimetype="text/javascript")
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    # Strong ETag per representation: the gzipped bytes are another representation.
    response.set_etag(asset.version + ("-gz" if gzipped else ""))
    if debug:
        cache = "no-cache"
    elif request.args.get("v") == asset.version:
        cache = f"public, max-age={VERSIONED_MAX_AGE}, immutable"
    else:
        cache = f"public, max-age={UNVERSIONED_MAX_AGE}"
    response.headers["Cache-Control"] = cache
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.make_conditional(request)  # 304 for a matching If-None-Match (in place)
    return response


def glob_to_js_regex(globs: Iterable[str]) -> str:
    """One JavaScript regular expression matching a path against any of ``globs``.

    Globs mean what ``ANALYTICS_EXCLUDED_PATHS`` means on the server: the exact path, or
    ``fnmatch``: ``*`` matches anything, ``/`` included, ``?`` one character, ``[abc]`` and
    ``[!abc]`` sets.
    """
    parts = []
    for glob in globs:
        translated = _glob_to_js(glob)
        # The exact path too, where the glob does not match itself ("/a[b]" matches "/ab").
        matches_itself = re.fullmatch(translated, glob) is not None
        parts.append(translated if matches_itself else f"{translated}|{re.escape(glob)}")
    return "^(?:" + "|".join(parts) + ")$" if parts else ""


def _glob_to_js(glob: str) -> str:
    # CPython's fnmatch.translate, minus its Python-only wrapper, so the tracker and
    # the server agree on every glob (sets, ranges, the odd empty or reversed range).
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        char = glob[i]
        i += 1
        if char == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            regex, i = _set_to_js(glob, i)
            out.append(regex)
        else:
            out.append(re.escape(char))
    return "".join(out)


def _set_to_js(glob: str, i: int) -> tuple[str, int]:
    """The regex of the ``[...]`` set opening before ``glob[i]``, and where it ends."""
    start, n = i, len(glob)
    j = i
    if j < n and glob[j] == "!":
        j += 1
    if j < n and glob[j] == "]":
        j += 1
    while j < n and glob[j] != "]":
        j += 1
    if j >= n:
        return "\\[", start  # not a set: a literal "["
    end = j + 1
    stuff = glob[i:j]
    if "-" not in stuff:
        stuff = stuff.replace("\\", "\\\\")
    else:
        chunks = []
        k = i + 2 if glob[i] == "!" else i + 1
        while True:
            k = glob.find("-", k, j)
            if k < 0:
                break
            chunks.append(glob[i:k])
            i = k + 1
            k = k + 3
        chunk = glob[i:j]
        if chunk:
            chunks.append(chunk)
        else:
            chunks[-1] += "-"
        for k in range(len(chunks) - 1, 0, -1):  # drop empty (reversed) ranges
            if chunks[k - 1][-1] > chunks[k][0]:
                chunks[k - 1] = chunks[k - 1][:-1] + chunks[k][1:]
                del chunks[k]
        stuff = "-".join(c.replace("\\", "\\\\").replace("-", "\\-") for c in chunks)
    stuff = re.sub(r"([&~|])", r"\\\1", stuff)
    if not stuff:
        return "(?!)", end  # empty set: never matches
    if stuff == "!":
        return ".", end
    if stuff[0] == "!":
        stuff = "^" + stuff[1:]
    elif stuff[0] in ("^", "["):
        stuff = "\\" + stuff
    return f"[{stuff}]", end


def _extensions(extensions: Iterable[str]) -> str:
    if isinstance(extensions, str):
        extensions = extensions.replace(",", " ").split()
    cleaned = []
    for ext in extensions:
        if not isinstance(ext, str):
            raise TypeError(f"download_extensions must be strings, not {ext!r}.")
        value = ext.strip().lstrip(".").lower()
        if not _EXTENSION.fullmatch(value):
            raise ValueError(
                f"download extension {ext!r} must be letters and digits, e.g. 'pdf' or 'tar.gz'."
            )
        cleaned.append(value.replace(".", "\\."))
    if not cleaned:
        raise ValueError("download_extensions is empty: use track_downloads=False instead.")
    return "|".join(cleaned)


def _paths(paths: str | Iterable[str]) -> list[str]:
    items = [paths] if isinstance(paths, str) else list(paths)
    for path in items:
        if not isinstance(path, str) or not path:
            raise TypeError(f"exclude must be path globs (strings), not {path!r}.")
    return items


FieldValue = str | int | float | bool | None


def _fields(fields: Mapping[str, FieldValue]) -> str:
    """``fields`` as the JSON of ``data-fields`` ("" when nothing is set).

    Values the tracker would drop are refused here, and so are values a custom column
    this app declares client-settable would refuse (the endpoint would reject every
    event of the page). ``None`` means not set.
    """
    if not isinstance(fields, Mapping):
        raise TypeError(f"fields must be a mapping of column names to values, not {fields!r}.")
    declared = current_state().limits.client_fields
    kept: dict[str, str | int | float | bool] = {}
    for key, value in fields.items():
        if not isinstance(key, str) or not _FIELD_NAME.fullmatch(key):
            raise ValueError(f"fields key {key!r} must be a column name (letters, digits, _).")
        if key in RESERVED_FIELDS:
            raise ValueError(
                f"fields key {key!r} is a built-in event field; fields are custom columns."
            )
        if value is None:
            continue
        where = f"fields[{key!r}]"
        if isinstance(value, str):
            if len(value) > PROP_VALUE_MAX:
                raise ValueError(f"{where} is longer than {PROP_VALUE_MAX} characters.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value) or abs(value) > _JS_SAFE_INT:
                raise ValueError(f"{where} must be a finite number within ±2**53.")
        elif not isinstance(value, bool):
            raise TypeError(f"{where} must be a string, number, boolean or None, not {value!r}.")
        if key in declared:
            try:
                check_custom(value, where, declared[key])
            except InvalidEvent as exc:
                raise ValueError(f"{exc} (column {key} of the event model).") from None
        kept[key] = value
    if not kept:
        return ""
    # ASCII JSON; the attribute escaping (Markup) makes it safe in the tag. A lone
    # surrogate becomes a \ud800 escape: check_custom refuses it for declared columns.
    return json.dumps(kept, separators=(",", ":"), allow_nan=False)


def _check_int(name: str, value: object, low: int, high: int, note: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}{note}, not {value!r}")


def analytics_script(
    *,
    mode: str = "balanced",
    sample_rate: float = 1.0,
    hash_routing: bool = False,
    track_outbound: bool = True,
    track_downloads: bool = True,
    track_forms: bool = True,
    download_extensions: Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    collect_url: str | None = None,
    respect_dnt: bool | None = None,
    allow_automation: bool = False,
    nonce: str | None = None,
    fields: Mapping[str, FieldValue] | None = None,
    batch_size: int | None = None,
    batch_timeout_ms: int = DEFAULT_BATCH_TIMEOUT_MS,
    auto_pageviews: bool = True,
    debug: bool = False,
    status: int | None = None,
) -> Markup:
    """The ``<script>`` tag of the tracker, for templates: ``{{ analytics_script() }}``.

    ``mode``: "strict" (no storage, only name/url/referrer), "balanced" or "full" (adds
    an offline queue in localStorage). ``sample_rate``: share of page loads tracked.
    ``exclude``: path globs never tracked, on top of ``ANALYTICS_EXCLUDED_PATHS``.
    ``collect_url`` defaults to the app's collect endpoint, ``respect_dnt`` to
    ``ANALYTICS_RESPECT_DNT``. ``allow_automation`` lets WebDriver-driven browsers
    (tests) send events. ``nonce`` is the page's CSP nonce.

    ``fields``: values of custom event columns for every event the page sends, e.g.
    ``fields={"ab_variant": g.ab_variant}`` (written as ``data-fields``, JSON); in the page,
    ``fa.set({"ab_variant": "B"})`` changes them for the events that follow. The endpoint
    records only columns named in ``ANALYTICS_CLIENT_FIELDS`` and ignores other keys; a
    value a declared column refuses (type, length) raises ``ValueError`` here. Values are
    strings (≤ 2000 characters), numbers, booleans, or ``None`` (not set). Strict mode
    sends no fields: only name, url and referrer.

    ``batch_size``: events per request (default 20, or ``ANALYTICS_MAX_BATCH`` when that
    is smaller; at most ``ANALYTICS_MAX_BATCH``); ``batch_timeout_ms``: how long a queued
    event waits for more before the batch is sent (0..60000, default 1000).
    ``auto_pageviews=False`` loads the manual-pageview build: no pageview on load or on
    history navigation; the page calls ``fa.pageview(url?)``. ``debug`` loads the
    readable script, which logs each batch to the console and sends nothing.

    ``status``: the HTTP status of the page, sent with its first pageview: a site
    without server pageviews calls ``analytics_script(status=404)`` in its "not found"
    template to get the error pages report. With ``ANALYTICS_SERVER_PAGEVIEWS`` the tag
    also carries the page id of the request's server pageview (``data-page``).
    """
    config = current_app.config
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, int | float)
        or not 0 <= sample_rate <= 1
    ):
        raise ValueError(f"sample_rate must be a number from 0 to 1, not {sample_rate!r}.")
    if collect_url is None:
        collect_url = url_for("analytics_collect.collect")
    if respect_dnt is None:
        respect_dnt = bool(config.get("ANALYTICS_RESPECT_DNT", True))
    globs = [*_paths(config.get("ANALYTICS_EXCLUDED_PATHS") or ()), *_paths(exclude or ())]
    fields_json = _fields(fields) if fields is not None else ""
    max_batch = current_state().settings.max_batch
    if batch_size is None:
        batch_size = min(DEFAULT_BATCH_SIZE, max_batch)
    _check_int("batch_size", batch_size, 1, max_batch, " (ANALYTICS_MAX_BATCH)")
    _check_int("batch_timeout_ms", batch_timeout_ms, 0, MAX_BATCH_TIMEOUT_MS)

    build = "debug" if debug else None if auto_pageviews else "manual"
    asset = tracker_asset(_debug() or debug, manual=not auto_pageviews)
    attrs: list[tuple[str, str]] = [
        ("src", url_for("analytics_collect.script", v=asset.version, build=build)),
        ("data-api", collect_url),
    ]
    if mode != "balanced":
        attrs.append(("data-mode", mode))
    if sample_rate != 1:
        attrs.append(("data-sample-rate", repr(float(sample_rate))))
    if hash_routing:
        attrs.append(("data-hash-routing", "true"))
    if not track_outbound:
        attrs.append(("data-outbound", "false"))
    if not track_downloads:
        attrs.append(("data-downloads", "false"))
    elif download_extensions is not None:
        attrs.append(("data-downloads", _extensions(download_extensions)))
    if not track_forms:
        attrs.append(("data-forms", "false"))
    if globs:
        attrs.append(("data-exclude", glob_to_js_regex(globs)))
    if not respect_dnt:
        attrs.append(("data-dnt", "false"))
    if allow_automation:
        attrs.append(("data-allow-automation", "true"))
    if fields_json and mode != "strict":  # strict mode sends no fields: none in the page
        attrs.append(("data-fields", fields_json))
    if batch_size != DEFAULT_BATCH_SIZE:
        attrs.append(("data-batch-size", str(batch_size)))
    if batch_timeout_ms != DEFAULT_BATCH_TIMEOUT_MS:
        attrs.append(("data-batch-timeout", str(batch_timeout_ms)))
    if not auto_pageviews:  # the manual build needs no attribute; the readable one does
        attrs.append(("data-pageviews", "false"))
    page = _page_fields(status)
    if page:
        attrs.append(("data-page", json.dumps(page, separators=(",", ":"))))
    if debug:
        attrs.append(("data-debug", "true"))
    if nonce:
        attrs.append(("nonce", nonce))
    rendered = Markup("").join(Markup(' {}="{}"').format(name, value) for name, value in attrs)
    return Markup("<script defer{}></script>").format(rendered)


def _page_fields(status: int | None) -> dict[str, str | int]:
    """The first pageview's own fields: the server pageview's page id, the status."""
    fields: dict[str, str | int] = {}
    if has_request_context() and wants_page_id():
        fields["page_id"] = page_id()
    if status is not None:
        _check_int("status", status, STATUS_MIN, STATUS_MAX)
        fields["status"] = status
    return fields
