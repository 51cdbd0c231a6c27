"""The Locations page's world map: each country an SVG path, shaded by its visitors.

The shapes are ``worldmap.json`` (Natural Earth 1:110m, public domain, in an Equal Earth
projection), built by ``tools/worldmap.py``; they are read once per process. Shades are
classes (``fa-map__shade-1`` to ``-5``), never inline styles, so the page keeps its CSP.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

#: Shade steps of a country with visitors (0: none).
SHADES: Final = 5


@dataclass(frozen=True)
class Shapes:
    """The map's view box and each country's path data, by ISO 3166-1 alpha-2 code."""

    width: int
    height: int
    paths: Mapping[str, str]


@dataclass(frozen=True)
class MapCountry:
    """One country as drawn: its code, path data, visitors and shade step."""

    code: str
    path: str
    visitors: int
    shade: int


@dataclass(frozen=True)
class WorldMap:
    """The map of one range: view box, countries with visitors (largest first, linked)
    and the others (drawn unshaded, not linked); ``unmapped``: visitors of countries the
    map has no shape for (small islands, unknown)."""

    width: int
    height: int
    visited: list[MapCountry]
    others: list[MapCountry]
    unmapped: int


@functools.cache
def shapes() -> Shapes:
    """The shipped country shapes (read once per process)."""
    data: dict[str, Any] = json.loads(
        resources.files(__package__).joinpath("worldmap.json").read_text(encoding="utf-8")
    )
    return Shapes(int(data["width"]), int(data["height"]), data["countries"])


def shade(visitors: int, top: int) -> int:
    """The shade step (1 to :data:`SHADES`) of ``visitors`` when the top country has
    ``top``; on a square-root scale, so that a few large countries do not leave every
    other one in the palest step. 0 for no visitors."""
    if visitors <= 0 or top <= 0:
        return 0
    return max(1, math.ceil(math.sqrt(visitors / top) * SHADES))


def world_map(visitors: Iterable[tuple[str | None, int]]) -> WorldMap:
    """The map of ``(country code, visitors)`` pairs (codes as stored: upper case)."""
    known = shapes()
    counted: dict[str, int] = {}
    unmapped = 0
    for code, count in visitors:
        key = (code or "").upper()
        if key in known.paths:
            counted[key] = counted.get(key, 0) + count
        else:
            unmapped += count
    top = max(counted.values(), default=0)
    visited = [
        MapCountry(code, known.paths[code], count, shade(count, top))
        for code, count in sorted(counted.items(), key=lambda item: (-item[1], item[0]))
        if count > 0
    ]
    shown = {c.code for c in visited}
    others = [
        MapCountry(code, path, 0, 0) for code, path in known.paths.items() if code not in shown
    ]
    return WorldMap(known.width, known.height, visited, others, unmapped)
