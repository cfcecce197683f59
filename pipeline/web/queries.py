"""The functions behind every page and every ``/api/`` route (the pages are the API's clients).

Each takes the :class:`~.context.WebContext` and plain arguments and returns a model of
:mod:`.models`; nothing here knows about HTTP. Bad input raises
:class:`~pipeline.errors.InputError` (400), an unknown id :class:`NotFoundError` (404), a
failing backend its own :class:`~pipeline.errors.PipelineError` (503).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..config import Config
from ..errors import InputError
from ..feedback.store import Judgement, record_confirmed, record_false_hit
from ..feedhealth import FeedHealth, count_by_status, health_of
from ..index.base import HIGHLIGHT_MARKS, SearchHit
from ..search import check_filters, closest, query_terms, search_documents, suggest
from .charts import bars_from_days
from .context import WebContext
from .geo import map_frame
from .models import (
    AlertChannel,
    AlertView,
    ArticleView,
    DayCount,
    EntityRef,
    FeedbackResult,
    FeedCounts,
    FeedsPage,
    FeedView,
    FilterOptions,
    Hit,
    JudgementView,
    OpsNotice,
    Option,
    Place,
    PlacesMap,
    QueryTerm,
    SearchFilters,
    SearchResults,
    TopicPage,
    TopicSummary,
)

__all__ = ["NotFoundError", "search_filters", "run_search", "split_snippet", "filter_options", "filter_fixes", "topics",
           "topic_page", "places_map", "alerts", "record_alert_feedback", "article", "feeds", "FEED_ORDER", "PER_PAGE",
           "MAX_PAGE"]

PER_PAGE = 20
MAX_PER_PAGE = 100
MAX_PAGE = 500
_MARK_START, _MARK_END = HIGHLIGHT_MARKS


#: place types that are areas or lines: listed with their counts but not drawn as a point
NOT_POINTS = frozenset({"country", "governorate", "district", "subdistrict", "region", "river", "road"})


class NotFoundError(InputError):
    """The topic, article or page asked for does not exist."""


def _day(name: str, value: str | None) -> str | None:
    """``YYYY-MM-DD`` (or a full ISO time) as the CLI takes it; empty means no bound."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{name}: not a date (YYYY-MM-DD): {value[:40]!r}") from None
    return parsed.date().isoformat() if len(value) <= 10 else parsed.isoformat()


def search_filters(q: str | None = None, topic: str | None = None, entity: str | None = None,
                   source: str | None = None, since: str | None = None, until: str | None = None) -> SearchFilters:
    """Validated filters; empty strings (what an HTML form sends for an unused field) mean "any"."""
    return SearchFilters(q=(q or "").strip()[:500], topic=(topic or "").strip() or None,
                         entity=(entity or "").strip() or None, source=(source or "").strip() or None,
                         since=_day("since", since), until=_day("until", until))


def split_snippet(marked: str) -> tuple[str, list[tuple[int, int]]]:
    """The snippet without highlight marks, and the [start, end) ranges that were marked.

    Unbalanced marks are dropped, so whatever the text holds the ranges are well formed.
    """
    plain: list[str] = []
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    length = 0
    for ch in marked:
        if ch == _MARK_START:
            start = length
        elif ch == _MARK_END:
            if start is not None and length > start:
                ranges.append((start, length))
            start = None
        else:
            plain.append(ch)
            length += 1
    return "".join(plain), ranges


def _why(lines: list[str]) -> list[str]:
    """``Entity (relation) via 'a'`` lines folded per entity: ``Entity (relation) via 'a', 'b'``, in order."""
    folded: dict[str, list[str]] = {}
    for line in lines:
        head, _, variant = line.partition(" via ")
        variants = folded.setdefault(head, [])
        if variant and variant not in variants:
            variants.append(variant)
    return [f"{head} via {', '.join(v)}" if v else head for head, v in folded.items()]


def _hit(h: SearchHit, ctx: WebContext) -> Hit:
    snippet, matches = split_snippet(h.snippet)
    if not matches and len(snippet) >= 190 and " " in snippet:  # the opening of the text: end on a word
        snippet = snippet.rsplit(" ", 1)[0] + " …"
    entities = [EntityRef(id=str(e.get("id")), name=str(e.get("name") or ctx.entity_name(str(e.get("id")))),
                          kind=str(e.get("kind") or ""), type=str(e.get("type") or "")) for e in h.entities]
    return Hit(id=h.id, url=h.url, title=h.title, source=h.source, published=h.published, score=h.score,
               snippet=snippet, matches=matches, topics=h.topics, entities=entities)


def run_search(ctx: WebContext, filters: SearchFilters, page: int = 1, per_page: int = PER_PAGE) -> SearchResults:
    """One page of results: THE search call of the web page and of ``/api/search``.

    It is the CLI's :func:`pipeline.search.search_documents`: the query is tagged, so a place or
    actor in any spelling or script finds every article tagged with it or spelling it; an unknown
    topic or entity id is an :class:`InputError` that suggests the closest ids.
    """
    if not 1 <= page <= MAX_PAGE:
        raise InputError(f"page: must be between 1 and {MAX_PAGE}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise InputError(f"limit: must be between 1 and {MAX_PER_PAGE}")
    found = search_documents(ctx.index, filters.q, tagger=ctx.tagger, topic=filters.topic, entity=filters.entity,
                             source=filters.source, since=filters.since, until=filters.until, limit=per_page + 1,
                             offset=(page - 1) * per_page, highlight=HIGHLIGHT_MARKS)
    understood = []
    if filters.q.strip():  # how the query was read, for the page to say so (tagging a query costs microseconds)
        for term in query_terms(ctx.tagger, filters.q)[1]:
            e = ctx.catalogue.entities[term.ids[0]]
            understood.append(QueryTerm(text=term.text, spellings=len(term.spellings),
                                        entity=EntityRef(id=e.id, name=e.name, kind=e.kind, type=e.type)))
    return SearchResults(filters=filters, page=page, per_page=per_page, has_next=len(found) > per_page,
                         understood=understood, hits=[_hit(h, ctx) for h in found[:per_page]])


def filter_fixes(ctx: WebContext, filters: SearchFilters) -> list[tuple[str, SearchFilters]]:
    """For a topic or entity filter that names no known id: ``(closest id, the same search with it)``."""
    topic_ids = [t.id for t in ctx.watchlist.topics]
    if filters.topic and filters.topic not in topic_ids:
        return [(t, filters.model_copy(update={"topic": t})) for t in closest(filters.topic, topic_ids)]
    if filters.entity and filters.entity not in ctx.catalogue.entities:
        return [(e, filters.model_copy(update={"entity": e})) for e in closest(filters.entity, ctx.catalogue.entities)]
    return []


def filter_options(ctx: WebContext) -> FilterOptions:
    """What the search form offers: watch topics, sources and entities found in the index, with counts."""
    topic_counts = dict(ctx.index.counts("topic"))
    topic_opts = [Option(value=t.id, label=t.name or t.id, count=topic_counts.get(t.id, 0))
                  for t in ctx.watchlist.topics]
    sources = [Option(value=s, label=s, count=n) for s, n in ctx.index.counts("source", limit=200)]
    entities = []
    for entity_id, n in ctx.index.counts("entity", limit=500):
        e = ctx.catalogue.entities.get(entity_id)
        entities.append(Option(value=entity_id, label=e.name if e else entity_id, count=n,
                               group="places" if e is None or e.kind == "place" else "actors"))
    entities.sort(key=lambda o: (o.group != "places", o.label.lower()))
    return FilterOptions(topics=topic_opts, sources=sources, entities=entities)


def topics(ctx: WebContext) -> list[TopicSummary]:
    """Every watch topic with its number of indexed articles and alerts."""
    counts = dict(ctx.index.counts("topic"))
    raised: dict[str, int] = {}
    for rec, _delivery, _created in ctx.alerts.store.all_alerts():
        raised[rec.topic] = raised.get(rec.topic, 0) + 1
    return [TopicSummary(id=t.id, name=t.name or t.id, description=t.description, articles=counts.get(t.id, 0),
                         alerts=raised.get(t.id, 0)) for t in ctx.watchlist.topics]


def _judgement(j: Judgement) -> JudgementView:
    return JudgementView.model_validate({"kind": j.kind, "note": j.note, "created_at": j.created_at,
                                         "alert_id": j.alert_id})


#: what the alerts can be filtered by: the analyst's judgement, or none yet
JUDGED = ("none", "false-hit", "confirmed")


def alerts(ctx: WebContext, topic: str | None = None, status: str | None = None, judged: str | None = None,
           limit: int = 200) -> list[AlertView]:
    """Alerts newest first, each with its delivery per channel and the analyst's judgement.
    ``status`` keeps alerts with a channel in it; ``judged`` those with this judgement (``none``: not judged)."""
    if judged is not None and judged not in JUDGED:
        raise InputError(f"judged: must be one of {', '.join(JUDGED)}, not {judged[:40]!r}")
    listed = [a for a in reversed(ctx.alerts.list_alerts()) if not topic or a["topic"] == topic]
    verdicts = ctx.feedback.of_documents((a["doc_id"], a["topic"]) for a in listed)
    out = []
    for a in listed:
        if status and not any(ch["status"] == status for ch in a["channels"].values()):
            continue
        j = verdicts.get((a["doc_id"], a["topic"]))
        if judged is not None and (j.kind if j is not None else "none") != judged:
            continue
        channels = {name: AlertChannel(**ch) for name, ch in a["channels"].items()}
        out.append(AlertView(**{**a, "channels": channels, "why": _why(a["why"])},
                             topic_name=ctx.topic_name(a["topic"]), judgement=_judgement(j) if j else None))
        if len(out) >= limit:
            break
    return out


def record_alert_feedback(ctx: WebContext, alert_id: str, judgement: str, note: str = "") -> FeedbackResult:
    """Record the analyst's judgement of an alert (``false-hit`` or ``confirmed``) in the feedback
    store, as ``feedback false-hit|confirmed ALERT_ID`` does: the article and topic keep one
    judgement, the latest; the same judgement and note again changes nothing (``changed`` false)."""
    record = {"false-hit": record_false_hit, "confirmed": record_confirmed}.get(judgement)
    if record is None:
        raise InputError(f"judgement: must be false-hit or confirmed, not {judgement[:40]!r}")
    alert = ctx.alerts.store.get_alert(alert_id) if alert_id.isalnum() and len(alert_id) <= 64 else None
    if alert is None:
        raise NotFoundError(f"no alert {alert_id[:64]!r}")
    before = ctx.feedback.get(alert.doc_id, alert.topic)
    stored = record(ctx.feedback, ctx.index, alert.id, note=" ".join(note.split())[:500],
                    get_alert=ctx.alerts.store.get_alert)
    changed = before is None or (before.kind, before.note, before.created_at) != (stored.kind, stored.note,
                                                                                  stored.created_at)
    return FeedbackResult(alert_id=alert.id, judgement=_judgement(stored),
                          previous=_judgement(before) if before is not None else None, changed=changed)


def topic_page(ctx: WebContext, topic_id: str, latest: int = 10) -> TopicPage:
    """A topic's articles per day (and as chart bars), its latest articles, its alerts and why they fired."""
    summary = next((t for t in topics(ctx) if t.id == topic_id), None)
    if summary is None:
        raise NotFoundError(f"no watch topic {topic_id[:60]!r}{suggest(topic_id, [t.id for t in ctx.watchlist.topics])}")
    per_day = ctx.index.counts("day", topic=topic_id, limit=5000)
    unit, bars = bars_from_days(per_day)
    newest = run_search(ctx, SearchFilters(topic=topic_id), per_page=latest).hits
    return TopicPage(topic=summary, per_day=[DayCount(day=d, count=n) for d, n in per_day], chart_unit=unit,
                     chart=bars, latest=newest, alerts=alerts(ctx, topic=topic_id))


def places_map(ctx: WebContext, filters: SearchFilters) -> PlacesMap:
    """Places of the catalogue mentioned in the indexed articles (under the filters), most mentioned first."""
    check_filters(ctx.tagger, filters.topic, filters.entity)
    frame = map_frame()
    places = []
    for entity_id, n in ctx.index.counts("entity", topic=filters.topic, source=filters.source,
                                         since=filters.since, until=filters.until, limit=1000):
        e = ctx.catalogue.entities.get(entity_id)
        if e is None or e.kind != "place" or e.lat is None or e.lon is None:
            continue
        note = "an area or a line: not drawn" if e.type in NOT_POINTS else \
            "" if frame.contains(e.lat, e.lon) else "outside the map"
        places.append(Place(id=e.id, name=e.name, type=e.type, lat=e.lat, lon=e.lon, articles=n, on_map=not note,
                            note=note))
    return PlacesMap(filters=filters, places=places)


def article(ctx: WebContext, doc_id: str) -> ArticleView:
    """One indexed article as stored: text, entities, topics and why each topic fired."""
    doc = ctx.index.get(doc_id) if doc_id.isalnum() and len(doc_id) <= 64 else None
    if doc is None:
        raise NotFoundError(f"no article {doc_id[:64]!r} in the index")
    why = []
    for t in doc.get("topic_reasons") or []:
        for r in t.get("reasons") or []:
            why.append(f"{ctx.topic_name(str(t.get('id')))}: {r.get('entity_name')} ({r.get('relation')}) "
                       f"via {str(r.get('text'))!r} in the {r.get('field')}")
    entities = [EntityRef(id=str(e.get("id")), name=str(e.get("name") or ""), kind=str(e.get("kind") or ""),
                          type=str(e.get("type") or "")) for e in doc.get("entities") or [] if e.get("id")]
    return ArticleView(id=doc["id"], url=doc.get("url", ""), title=doc.get("title", ""), text=doc.get("text", ""),
                       source=doc.get("source", ""), published=doc.get("published"),
                       fetched_at=doc.get("fetched_at"), authors=list(doc.get("authors") or []),
                       topics=list(doc.get("topics") or []), entities=entities, why=_why(why))


#: the order of the Feeds page: what needs a look first
FEED_ORDER = ("failing", "silent", "new", "ok")


def _ops_notice(ctx: WebContext, state: dict[str, Any] | None) -> OpsNotice:
    if state is None:
        return OpsNotice(alerted=False)
    return OpsNotice(alerted=state["state"] == "down", state=state["state"], event_id=state["event_id"],
                     since=datetime.fromtimestamp(state["episode"], UTC).isoformat(timespec="seconds"),
                     at=datetime.fromtimestamp(state["updated_at"], UTC).isoformat(timespec="seconds"),
                     channels={name: AlertChannel(**ch) for name, ch in ctx.alerts.channels_of(state["event_id"]).items()})


def _feed_order(h: FeedHealth) -> tuple[int, float, str, str]:
    since = h.problem_since
    return FEED_ORDER.index(h.status), since.timestamp() if since else 0.0, (h.name or h.url).casefold(), h.url


def feeds(ctx: WebContext, status: str | None = None, now: datetime | None = None) -> FeedsPage:
    """Every configured feed's health (:func:`pipeline.feedhealth.health_of`, as ``feeds`` prints it) with
    what ops were told; failing feeds first (longest down first), then silent, new and ok ones.
    ``status`` keeps one status; the counts are over every feed."""
    if status is not None and status not in FEED_ORDER:
        raise InputError(f"status: must be one of {', '.join(FEED_ORDER)}, not {status[:40]!r}")
    now = now or datetime.now(UTC)
    health = sorted(health_of(Config(settings=ctx.settings, feeds=ctx.feeds(), watchlist=ctx.watchlist), now=now),
                    key=_feed_order)
    ops = ctx.alerts.store.ops_states()
    views = [FeedView.model_validate({**h.to_dict(), "ops": _ops_notice(ctx, ops.get(h.url))}) for h in health]
    counts = FeedCounts(**count_by_status(health), ops_alerted=sum(v.ops.alerted for v in views))
    return FeedsPage.model_validate({
        "checked_at": now.isoformat(timespec="seconds"), "feeds_file": str(ctx.feeds_file),
        "ops_alerts": ctx.settings.ops.feed_alerts, "counts": counts, "status": status,
        "feeds": [v for v in views if status is None or v.status == status]})
