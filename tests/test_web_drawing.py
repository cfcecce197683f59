"""The server-drawn parts of the page: chart buckets, map projection, marker layout, snippet marks."""

from __future__ import annotations

from pipeline.index.base import HIGHLIGHT_MARKS
from pipeline.web.charts import bars_from_days, chart_geometry
from pipeline.web.geo import HEIGHT, WIDTH, layout_markers, map_frame, marker_radius
from pipeline.web.queries import split_snippet
from pipeline.web.render import highlight, safe_href, when

S, E = HIGHLIGHT_MARKS


def test_bars_are_days_weeks_or_months_with_empty_buckets() -> None:
    unit, bars = bars_from_days([("2017-09-01", 2), ("2017-09-03", 1)])
    assert unit == "day" and len(bars) == 14  # at least two weeks of axis
    assert [b.count for b in bars[-3:]] == [2, 0, 1] and bars[-1].end == "2017-09-04"
    unit, bars = bars_from_days([("2016-09-18", 1), ("2017-06-01", 3), ("2017-06-07", 1)])
    assert unit == "week" and bars[0].start == "2016-09-12" and sum(b.count for b in bars) == 5
    assert all(b.start < b.end for b in bars)
    unit, bars = bars_from_days([("2010-01-31", 1), ("2017-06-01", 3), ("bad", 9)])
    assert unit == "month" and bars[0].label == "2010-01" and bars[-1].count == 3 and len(bars) == 90
    assert bars_from_days([]) == ("day", [])
    geo = chart_geometry(bars_from_days([("2017-09-01", 4), ("2017-09-02", 2)])[1])
    tall, half = geo.boxes[-2], geo.boxes[-1]
    assert geo.top_count == 4 and tall.height == 2 * half.height and tall.y + tall.height == geo.plot_bottom


def test_map_frame_draws_syria_and_its_neighbours() -> None:
    frame = map_frame()
    names = {c.name for c in frame.countries}
    assert {"Syria", "Iraq", "Jordan", "Lebanon", "Turkey", "Israel"} <= names
    assert [c.name for c in frame.countries if c.focus] == ["Syria"] and frame.countries[-1].name == "Syria"
    assert (frame.width, frame.height) == (WIDTH, HEIGHT)
    x, y = frame.project(35.33, 40.14)  # Deir ez-Zor: inside the frame, right of Damascus, above al-Tanf
    dx, dy = frame.project(33.51, 36.29)
    assert 0 < dx < x < WIDTH and 0 < y < dy < HEIGHT
    assert frame.contains(33.5, 38.65) and not frame.contains(38.9, -77.0)


def test_markers_scale_with_articles_and_names_do_not_collide() -> None:
    assert marker_radius(0, 10) == 0 and marker_radius(10, 10) == 26 and marker_radius(1, 4) == 15
    markers = layout_markers([("a", "Deir ez-Zor", 9, 35.33, 40.14), ("b", "Hatla", 1, 35.36, 40.18),
                              ("c", "al-Mayadin", 3, 35.02, 40.45), ("d", "Damascus", 2, 33.51, 36.29)])
    assert [m.id for m in markers] == ["a", "c", "d", "b"]  # largest first, drawn first
    boxes = []
    for m in markers:
        if m.label:
            x, y, anchor = m.label
            w = 6.7 * len(m.name)
            left = x if anchor == "start" else x - w
            boxes.append((left, y - 11, left + w, y + 3))
    assert len(boxes) >= 3
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_snippet_marks_become_ranges_then_escaped_marks() -> None:
    plain, ranges = split_snippet(f"the {S}siege{E} of <b>{S}Deir{E}{E} {S}x")
    assert plain == "the siege of <b>Deir x" and ranges == [(4, 9), (16, 20)]
    assert str(highlight(plain, ranges)) == "the <mark>siege</mark> of &lt;b&gt;<mark>Deir</mark> x"
    assert str(highlight("<i>", [(0, 99), (2, 1)])) == "&lt;i&gt;"  # bad ranges are ignored, text still escaped


def test_links_and_times() -> None:
    assert safe_href("https://a.example/x") == "https://a.example/x"
    for bad in ("javascript:alert(1)", " JAVASCRIPT:alert(1)", "data:text/html,x", "//evil.example", "/local", None):
        assert safe_href(bad) == ""
    assert when("2017-06-09T14:20:00+00:00") == "2017-06-09 14:20 UTC"
    assert when("2017-06-09") == "2017-06-09" and when(None) == "undated" and when("soon") == "soon"
    assert when("2017-06-09T14:20:00+03:00") == "2017-06-09 14:20 UTC+0300"
