"""Articles over time: daily counts grouped into bars, and the bars' geometry for an SVG chart.

Counts come per day from the index. A chart of a few weeks shows days; a longer span is
grouped into ISO weeks (Monday first) or months so the bars stay readable (at most
``MAX_BARS``). Every bar covers ``[start, end)`` so it can link to the matching search.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .models import ChartBar

__all__ = ["bars_from_days", "ChartGeometry", "chart_geometry", "MAX_BARS", "MIN_DAYS"]

MAX_BARS = 92
MIN_DAYS = 14  # a short or single-day history still gets a two-week axis


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def bars_from_days(per_day: list[tuple[str, int]]) -> tuple[str, list[ChartBar]]:
    """(unit, bars) covering the first to the last day with articles, empty buckets included."""
    days: dict[date, int] = {}
    for day, n in per_day:
        try:
            days[date.fromisoformat(day[:10])] = days.get(date.fromisoformat(day[:10]), 0) + n
        except ValueError:
            continue  # a malformed date in a document: not chartable, still searchable
    if not days:
        return "day", []
    last = max(days)
    first = min(min(days), last - timedelta(days=MIN_DAYS - 1))
    span = (last - first).days + 1
    if span <= MAX_BARS:
        unit, start, step = "day", first, lambda d: d + timedelta(days=1)
    elif span <= MAX_BARS * 7:
        unit, start, step = "week", first - timedelta(days=first.weekday()), lambda d: d + timedelta(days=7)
    else:
        unit, start, step = "month", _month_start(first), _next_month
    bars = []
    while start <= last:
        end = step(start)
        count = sum(n for d, n in days.items() if start <= d < end)
        label = start.strftime("%Y-%m") if unit == "month" else start.isoformat()
        bars.append(ChartBar(label=label, start=start.isoformat(), end=end.isoformat(), count=count))
        start = end
    return unit, bars


@dataclass(frozen=True)
class BarBox:
    bar: ChartBar
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class ChartGeometry:
    width: float
    height: float
    plot_left: float
    plot_bottom: float
    top_count: int
    boxes: list[BarBox]
    ticks: list[tuple[float, str]]  # x position, label


def chart_geometry(bars: list[ChartBar], *, width: float = 860.0, height: float = 220.0) -> ChartGeometry:
    """Pixel boxes for an SVG bar chart with a y axis up to the largest count and a few date ticks."""
    left, right, top, bottom = 36.0, 8.0, 12.0, 28.0
    plot_w, plot_h = width - left - right, height - top - bottom
    top_count = max((b.count for b in bars), default=0) or 1
    slot = plot_w / max(1, len(bars))
    gap = min(2.0, slot * 0.2)
    boxes = []
    for i, b in enumerate(bars):
        h = round(plot_h * b.count / top_count, 1)
        boxes.append(BarBox(b, round(left + i * slot + gap / 2, 1), round(top + plot_h - h, 1),
                            round(max(1.0, slot - gap), 1), h))
    every = max(1, len(bars) // 6)
    ticks = [(round(left + i * slot + slot / 2, 1), b.label) for i, b in enumerate(bars) if i % every == 0]
    return ChartGeometry(width, height, left, top + plot_h, top_count, boxes, ticks)
