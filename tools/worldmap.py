"""Builds flask_analytics/web/dashboard/worldmap.json, the Locations page's world map.

Source: Natural Earth's 1:110m admin-0 countries (public domain), as the TopoJSON of the
npm package world-atlas (ISC), which `npm ci` in tracker/ installs. Each country becomes
one SVG path in an Equal Earth projection (an equal-area projection: a country's shade
is not exaggerated by its latitude), on a 1000-unit-wide view box, its borders
simplified (Douglas-Peucker, shared borders simplified once so neighbours still meet)
and its coordinates rounded to a tenth of a unit. Antarctica is left out.

ISO 3166-1 numeric codes become the alpha-2 codes the dashboard stores through
pycountry (only this script needs it: pip install pycountry). Natural Earth's three
shapes without a numeric code: Kosovo is XK (what geolocation databases use), Northern
Cyprus and Somaliland are drawn as part of CY and SO, the countries IP geolocation
reports for them.

    python tools/worldmap.py [--tolerance 0.35]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pycountry

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tracker" / "node_modules" / "world-atlas" / "countries-110m.json"
TARGET = ROOT / "flask_analytics" / "web" / "dashboard" / "worldmap.json"
#: View box width; the height follows from the projection's aspect ratio.
WIDTH = 1000.0
#: Shapes Natural Earth gives no numeric code, by name.
UNNUMBERED = {"Kosovo": "XK", "N. Cyprus": "CY", "Somaliland": "SO"}
LEFT_OUT = {"010"}  # Antarctica

# Equal Earth (Šavrič, Patterson, Jenny 2018).
A1, A2, A3, A4 = 1.340264, -0.081106, 0.000893, 0.003796
M = math.sqrt(3) / 2


def equal_earth(lon: float, lat: float) -> tuple[float, float]:
    lam, phi = math.radians(lon), math.radians(lat)
    theta = math.asin(M * math.sin(phi))
    t2 = theta * theta
    t6 = t2 * t2 * t2
    x = lam * math.cos(theta) / (M * (A1 + 3 * A2 * t2 + t6 * (7 * A3 + 9 * A4 * t2)))
    y = theta * (A1 + A2 * t2 + t6 * (A3 + A4 * t2))
    return x, y


Point = tuple[float, float, float, float]  # x, y in the view box; longitude, latitude


def simplify(points: list[Point], tolerance: float) -> list[Point]:
    """Douglas-Peucker on x, y, keeping both ends (an arc's ends are shared with its
    neighbours)."""
    if len(points) < 3:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        x1, y1 = points[first][:2]
        x2, y2 = points[last][:2]
        dx, dy = x2 - x1, y2 - y1
        length = math.hypot(dx, dy)
        far, index = 0.0, None
        for i in range(first + 1, last):
            px, py = points[i][:2]
            if length:
                d = abs(dy * px - dx * py + x2 * y1 - y2 * x1) / length
            else:
                d = math.hypot(px - x1, py - y1)
            if d > far:
                far, index = d, i
        if index is not None and far > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [p for p, kept in zip(points, keep, strict=True) if kept]


def build(topology: dict[str, Any], tolerance: float) -> dict[str, Any]:
    scale, translate = topology["transform"]["scale"], topology["transform"]["translate"]
    raw_arcs: list[list[tuple[float, float]]] = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:  # delta-encoded, quantized
            x, y = x + dx, y + dy
            points.append((x * scale[0] + translate[0], y * scale[1] + translate[1]))
        raw_arcs.append(points)
    # Fit the projected world (Antarctica aside) into WIDTH, y pointing down.
    geometries = [
        g
        for g in topology["objects"]["countries"]["geometries"]
        if g.get("id") not in LEFT_OUT and g.get("arcs")
    ]
    used = {i if i >= 0 else ~i for g in geometries for i in _arc_indexes(g)}
    projected = [equal_earth(lon, lat) for i in used for lon, lat in raw_arcs[i]]
    left, right = min(p[0] for p in projected), max(p[0] for p in projected)
    bottom, top = min(p[1] for p in projected), max(p[1] for p in projected)
    k = WIDTH / (right - left)
    height = math.ceil((top - bottom) * k)

    def place(lon: float, lat: float) -> Point:
        px, py = equal_earth(lon, lat)
        return ((px - left) * k, (top - py) * k, lon, lat)

    arcs = [simplify([place(lon, lat) for lon, lat in arc], tolerance) for arc in raw_arcs]
    paths: dict[str, list[str]] = {}
    for g in geometries:
        code = _alpha2(g)
        polygons = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]]
        for polygon in polygons:
            for ring in polygon:
                for part in _split_at_antimeridian(_ring(arcs, ring), place):
                    path = _path(part)
                    if path is not None:
                        paths.setdefault(code, []).append(path)
    return {
        "source": "Natural Earth 1:110m admin-0 countries (public domain), via world-atlas 2",
        "projection": "Equal Earth",
        "width": int(WIDTH),
        "height": height,
        "countries": {code: "".join(rings) for code, rings in sorted(paths.items())},
    }


def _arc_indexes(geometry: dict[str, Any]) -> list[int]:
    polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
    return [i for polygon in polygons for ring in polygon for i in ring]


def _alpha2(geometry: dict[str, Any]) -> str:
    numeric = geometry.get("id")
    if numeric is None:
        return UNNUMBERED[geometry["properties"]["name"]]
    country = pycountry.countries.get(numeric=numeric)
    if country is None:
        raise SystemExit(f"no ISO 3166 country numbered {numeric}")
    return str(country.alpha_2)


def _split_at_antimeridian(ring: list[Point], place: Any) -> list[list[Point]]:
    """A ring crossing the 180th meridian (Russia's far east, Fiji) as two rings, one
    each side, clamped to the edge (a planar drawing would join them across the map);
    a side with next to no area is left out. Other rings as they are."""
    lons = [p[2] for p in ring]
    if all(abs(a - b) <= 180 for a, b in pairwise(lons)):
        return [ring]
    parts = []
    for shift in (0, -360):
        part = [place(min(180, max(-180, lon % 360 + shift)), lat) for _, _, lon, lat in ring]
        area = sum(a[0] * b[1] - b[0] * a[1] for a, b in pairwise([*part, part[0]])) / 2
        if abs(area) >= 1:
            parts.append(part)
    return parts


def _ring(arcs: list[list[Point]], indexes: list[int]) -> list[Point]:
    points: list[Point] = []
    for i in indexes:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        points.extend(arc[1:] if points else arc)
    return points


def _path(points: list[Point]) -> str | None:
    """A closed ring as path data: absolute first point, then relative steps in tenths;
    None for a ring smaller than that (an islet: fewer than three distinct points)."""
    rounded = [(round(p[0] * 10), round(p[1] * 10)) for p in points]
    steps = [rounded[0]]
    for point in rounded[1:]:
        if point != steps[-1]:
            steps.append(point)
    if len(set(steps)) < 3:
        return None
    x0, y0 = steps[0]
    numbers = [f"{(bx - ax) / 10:g} {(by - ay) / 10:g}" for (ax, ay), (bx, by) in pairwise(steps)]
    text = f"M{x0 / 10:g} {y0 / 10:g}l" + " ".join(numbers) + "z"
    # Shortest valid path data: "0.5" as ".5", no space before a minus sign.
    return re.sub(r"(?<![0-9])0\.", ".", text).replace(" -", "-").replace("l-", "l-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tolerance", type=float, default=0.35, help="in view box units")
    args = parser.parse_args()
    topology = json.loads(SOURCE.read_text())
    data = build(topology, args.tolerance)
    TARGET.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(
        f"{TARGET.relative_to(ROOT)}: {len(data['countries'])} countries, "
        f"{TARGET.stat().st_size:,} bytes"
    )


if __name__ == "__main__":
    main()
