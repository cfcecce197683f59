"""The map's base layer: Syria and its neighbours as SVG paths, drawn on the server.

The boundaries are Natural Earth 1:50m countries as shipped by the npm package
``world-atlas`` 2.0.2 (``static/vendor/world-atlas/``, ISC; data public domain), read as
TopoJSON: arcs are delta-encoded integers scaled by ``transform``; a polygon ring is a list
of arc indexes, ``~i`` meaning arc ``i`` reversed. The projection is equirectangular with
longitudes scaled by cos(latitude of the view's centre): at this size and latitude it is
within a few per cent of true shape, and it needs no library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["BOUNDARIES", "MapFrame", "CountryShape", "Marker", "map_frame", "marker_radius", "layout_markers"]

BOUNDARIES = Path(__file__).parent / "static" / "vendor" / "world-atlas" / "countries-50m.json"

# The view: the Syrian theatre with enough of each neighbour to place it (degrees).
LON_MIN, LON_MAX, LAT_MIN, LAT_MAX = 32.5, 45.2, 30.5, 38.3
WIDTH = 900.0
# Countries drawn (Natural Earth short names); the first is the focus, shaded darker.
COUNTRIES = ("Syria", "Lebanon", "Israel", "Palestine", "Jordan", "Iraq", "Turkey", "Cyprus", "N. Cyprus",
             "Saudi Arabia", "Egypt", "Iran", "Kuwait", "Armenia", "Azerbaijan", "Georgia")
# Where each country's name is written (lat, lon), chosen to stay clear of the places plotted.
LABELS = {"Syria": (35.15, 37.4), "Lebanon": (34.05, 35.3), "Israel": (31.15, 34.6), "Jordan": (31.05, 36.9),
          "Iraq": (33.0, 42.5), "Turkey": (37.85, 35.5), "Cyprus": (34.45, 33.25), "Saudi Arabia": (30.75, 39.9),
          "Iran": (35.9, 44.75)}
_PAD = 40.0  # pixels outside the frame to which far-away vertices are pulled


@dataclass(frozen=True)
class CountryShape:
    name: str
    path: str  # SVG path data in frame pixels
    focus: bool
    label: tuple[float, float] | None  # pixel position of the name, if written


@dataclass(frozen=True)
class MapFrame:
    width: float
    height: float
    countries: tuple[CountryShape, ...]

    def project(self, lat: float, lon: float) -> tuple[float, float]:
        return _project(lat, lon)

    def contains(self, lat: float, lon: float) -> bool:
        return LAT_MIN <= lat <= LAT_MAX and LON_MIN <= lon <= LON_MAX


_COS = math.cos(math.radians((LAT_MIN + LAT_MAX) / 2))
_SCALE = WIDTH / ((LON_MAX - LON_MIN) * _COS)
HEIGHT = round((LAT_MAX - LAT_MIN) * _SCALE, 1)


def _project(lat: float, lon: float) -> tuple[float, float]:
    return round((lon - LON_MIN) * _COS * _SCALE, 1), round((LAT_MAX - lat) * _SCALE, 1)


def marker_radius(count: int, largest: int) -> float:
    """Circle radius in pixels: area grows with the number of articles, 4 to 26 px."""
    if count <= 0 or largest <= 0:
        return 0.0
    return round(4.0 + 22.0 * math.sqrt(count / largest), 1)


def _decode_arcs(topo: dict[str, Any]) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))  # (lon, lat)
        arcs.append(points)
    return arcs


def _ring(indexes: Iterable[int], arcs: Sequence[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    ring: list[tuple[float, float]] = []
    for i in indexes:
        points = arcs[i] if i >= 0 else arcs[~i][::-1]
        ring.extend(points[1:] if ring else points)  # consecutive arcs share their end point
    return ring


def _ring_path(ring: list[tuple[float, float]]) -> str:
    """``M x,y L ...Z`` of a ring, vertices far outside the frame pulled onto a padded border."""
    out: list[tuple[float, float]] = []
    for lon, lat in ring:
        x, y = _project(lat, lon)
        x = min(max(x, -_PAD), WIDTH + _PAD)
        y = min(max(y, -_PAD), HEIGHT + _PAD)
        if not out or out[-1] != (x, y):
            out.append((x, y))
    if len(out) < 3 or all(x in (-_PAD, WIDTH + _PAD) or y in (-_PAD, HEIGHT + _PAD) for x, y in out):
        return ""  # entirely outside the frame
    return "M" + "L".join(f"{x:g},{y:g}" for x, y in out) + "Z"


def _polygons(geometry: dict[str, Any]) -> list[list[list[int]]]:
    if geometry.get("type") == "Polygon":
        return [geometry["arcs"]]
    if geometry.get("type") == "MultiPolygon":
        return list(geometry["arcs"])
    return []


@lru_cache(maxsize=1)
def map_frame(path: Path = BOUNDARIES) -> MapFrame:
    """The projected countries of the view (read and decoded once per process)."""
    topo = json.loads(path.read_text(encoding="utf-8"))
    arcs = _decode_arcs(topo)
    shapes = []
    for geometry in topo["objects"]["countries"]["geometries"]:
        name = (geometry.get("properties") or {}).get("name", "")
        if name not in COUNTRIES:
            continue
        d = "".join(_ring_path(_ring(ring, arcs)) for polygon in _polygons(geometry) for ring in polygon)
        if d:
            label = _project(*LABELS[name]) if name in LABELS else None
            shapes.append(CountryShape(name=name, path=d, focus=name == COUNTRIES[0], label=label))
    shapes.sort(key=lambda s: s.focus)  # the focus country last, so its border is drawn on top
    return MapFrame(width=WIDTH, height=HEIGHT, countries=tuple(shapes))


@dataclass(frozen=True)
class Marker:
    id: str
    name: str
    count: int
    x: float
    y: float
    r: float
    label: tuple[float, float, str] | None  # x, y, text-anchor; None when no room for the name


_CHAR_W, _LINE_H = 6.7, 14.0  # label size at 12 px (approximate: no font metrics on the server)


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def layout_markers(points: Iterable[tuple[str, str, int, float, float]]) -> list[Marker]:
    """Circles for (id, name, count, lat, lon), largest first, each named right or left of its circle
    where that does not cover a name already placed or another circle (biggest places get names first)."""
    pts = sorted(points, key=lambda p: (-p[2], p[1]))
    largest = max((p[2] for p in pts), default=0)
    circles = []
    for pid, name, count, lat, lon in pts:
        x, y = _project(lat, lon)
        circles.append((pid, name, count, x, y, marker_radius(count, largest)))
    boxes = [(x - r, y - r, x + r, y + r) for *_, x, y, r in circles]
    taken: list[tuple[float, float, float, float]] = []
    markers = []
    for i, (pid, name, count, x, y, r) in enumerate(circles):
        width = _CHAR_W * len(name)
        label = None
        for anchor, left in (("start", x + r + 3), ("end", x - r - 3 - width)):
            box = (left, y - _LINE_H / 2, left + width, y + _LINE_H / 2)
            others = [b for j, b in enumerate(boxes) if j != i]
            if 0 <= box[0] and box[2] <= WIDTH and not any(_overlaps(box, b) for b in taken + others):
                taken.append(box)
                label = (round(x + r + 3 if anchor == "start" else x - r - 3, 1), round(y + 4, 1), anchor)
                break
        markers.append(Marker(pid, name, count, x, y, r, label))
    return markers
