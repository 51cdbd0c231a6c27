"""Numbers as the dashboard prints them (compact counts, rates, durations, changes), and
countries' flags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Codes with a flag in ``static/analytics/flags/`` (4x3 SVGs from flag-icons, MIT; see
#: the LICENSE there): ISO 3166-1 alpha-2, plus XK (Kosovo) and EU.
_FLAG_CODES_TEXT: Final = """
    ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm
    bn bo bq br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx
    cy cz de dj dk dm do dz ec ee eg eh er es et eu fi fj fk fm fo fr ga gb gd ge gf
    gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq
    ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu
    lv ly ma mc md me mf mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc
    ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re
    ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st sv sx sy sz tc td
    tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug um us uy uz va vc ve vg vi vn vu
    wf ws xk ye yt za zm zw
"""
FLAG_CODES: Final = frozenset(_FLAG_CODES_TEXT.split())
#: The flag of a missing or unknown country code.
UNKNOWN_FLAG: Final = "flags/xx.svg"

#: Metrics whose decrease is the good news.
LOWER_IS_BETTER: Final = frozenset({"bounce_rate"})


@dataclass(frozen=True)
class Change:
    """A metric's change against the comparison period, ready to print."""

    text: str
    direction: str  # "up", "down" or "flat"
    good: bool | None
    title: str


def compact(value: float | None) -> str:
    """1234 -> "1.2k", 12345678 -> "12M" (as Plausible prints counts)."""
    if value is None:
        return "—"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            scaled = value / size
            text = f"{scaled:.1f}" if abs(scaled) < 10 else f"{scaled:.0f}"
            return text.removesuffix(".0") + suffix
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def grouped(value: float | None) -> str:
    """A whole number with thousands separators: 12345 -> "12,345"."""
    return "—" if value is None else f"{value:,.0f}"


def percent(value: float | None) -> str:
    """A ratio as a percentage: 0.423 -> "42%", 0.042 -> "4.2%"."""
    if value is None:
        return "—"
    scaled = value * 100
    return f"{scaled:.0f}%" if scaled >= 10 or scaled == 0 else f"{scaled:.1f}%"


def duration(seconds: float | None) -> str:
    """42 -> "42s", 125 -> "2m 05s", 3725 -> "1h 02m"."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def decimal(value: float | None) -> str:
    """Two decimals: 2.5 -> "2.50"."""
    return "—" if value is None else f"{value:.2f}"


def format_metric(name: str, value: float | None) -> str:
    """A count or rate printed the way its metric ``name`` reads best."""
    if name == "bounce_rate" or name.endswith("_rate"):
        return percent(value)
    if name in ("avg_visit_duration_s", "avg_engagement_s"):
        return duration(value)
    if name in ("views_per_session", "events_per_visitor"):
        return decimal(value)
    if name.endswith("_ms"):  # response times
        return "—" if value is None else f"{grouped(value)} ms"
    return compact(value)


def change(name: str, current: float | None, previous: float | None) -> Change | None:
    """Relative change of a count, or percentage points for a rate; None if unknown."""
    if current is None or previous is None:
        return None
    if name == "bounce_rate":
        delta = (current - previous) * 100
        text = f"{abs(delta):.0f} pp"
        title = f"{previous * 100:.1f}% before"
    else:
        title = f"{format_metric(name, previous)} before"
        if previous == 0:
            if current == 0:
                return Change("0%", "flat", None, title)
            return Change("new", "up", name not in LOWER_IS_BETTER, title)
        delta = (current - previous) / previous * 100
        text = f"{abs(delta):.0f}%"
    if round(delta) == 0:
        return Change(text, "flat", None, title)
    up = delta > 0
    return Change(text, "up" if up else "down", up != (name in LOWER_IS_BETTER), title)


def flag(code: str | None) -> str:
    """The static file of the flag of an ISO 3166-1 alpha-2 ``code`` (``flags/fr.svg``); a
    neutral flag for a missing or unknown one. An image, not an emoji: Windows and systems
    without a colour-emoji font show flag emoji as two letters or empty boxes."""
    key = (code or "").lower()
    return f"flags/{key}.svg" if key in FLAG_CODES else UNKNOWN_FLAG
