"""What the JSON API returns (and the pages render): pydantic models, so OpenAPI documents them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["EntityRef", "Hit", "SearchFilters", "QueryTerm", "SearchResults", "Option", "FilterOptions", "DayCount",
           "ChartBar", "AlertChannel", "JudgementView", "AlertView", "FeedbackRequest", "FeedbackResult",
           "TopicSummary", "TopicPage", "Place", "PlacesMap", "ArticleView", "OpsNotice", "FeedView", "FeedCounts",
           "FeedsPage", "ApiError"]

#: what an analyst can say of an alert (the feedback store's kinds for a topic that fired)
Verdict = Literal["false-hit", "confirmed"]


class EntityRef(BaseModel):
    id: str
    name: str = ""
    kind: str = ""
    type: str = ""


class Hit(BaseModel):
    id: str
    url: str
    title: str
    source: str = ""
    published: str | None = None
    score: float = 0.0
    snippet: str = Field("", description="text around the matches, plain (no markup)")
    matches: list[tuple[int, int]] = Field(default_factory=list,
                                           description="[start, end) character ranges of the matched terms in snippet")
    topics: list[str] = Field(default_factory=list)
    entities: list[EntityRef] = Field(default_factory=list)


class SearchFilters(BaseModel):
    q: str = ""
    topic: str | None = None
    entity: str | None = None
    source: str | None = None
    since: str | None = Field(None, description="published on or after (YYYY-MM-DD)")
    until: str | None = Field(None, description="published before (YYYY-MM-DD)")

    def active(self) -> bool:
        return any((self.q.strip(), self.topic, self.entity, self.source, self.since, self.until))


class QueryTerm(BaseModel):
    """A place or actor the query names, as the tagger read it: matched in every spelling."""

    text: str = Field(description="how the query wrote it")
    entity: EntityRef
    spellings: int = Field(0, description="catalogue spellings searched in the text besides the tagged articles")


class SearchResults(BaseModel):
    filters: SearchFilters
    page: int
    per_page: int
    has_next: bool
    understood: list[QueryTerm] = Field(default_factory=list,
                                        description="catalogue entities named in q (any spelling, any script)")
    hits: list[Hit]


class Option(BaseModel):
    value: str
    label: str
    count: int = 0
    group: str = ""


class FilterOptions(BaseModel):
    topics: list[Option]
    sources: list[Option]
    entities: list[Option]


class DayCount(BaseModel):
    day: str
    count: int


class ChartBar(BaseModel):
    label: str
    start: str
    end: str  # exclusive
    count: int


class AlertChannel(BaseModel):
    status: str
    attempts: int
    last_error: str | None = None
    recipients: list[str] = Field(default_factory=list)
    refused: dict[str, str] = Field(default_factory=dict)
    sent_at: str | None = None
    next_attempt_at: str | None = None


class JudgementView(BaseModel):
    """The analyst's judgement of an alert's topic on its article (the feedback store's, one per article and topic)."""

    kind: Literal["false-hit", "confirmed", "missed"] = Field(
        description="false-hit: should not have fired; confirmed: right to fire; missed: recorded as a miss")
    note: str = ""
    created_at: str = Field(description="when it was recorded (UTC)")
    alert_id: str | None = Field(None, description="the alert it was given on, if it was given on one")


class AlertView(BaseModel):
    id: str
    topic: str
    topic_name: str = ""
    story_id: str
    doc_id: str
    title: str
    url: str
    source: str
    published: str | None = None
    created_at: str
    delivery: str
    other_sources: list[str] = Field(default_factory=list)
    why: list[str] = Field(default_factory=list, description="one line per reason the topic fired")
    channels: dict[str, AlertChannel] = Field(default_factory=dict)
    digests: list[dict[str, Any]] = Field(default_factory=list)
    judgement: JudgementView | None = Field(None, description="the analyst's judgement, if one is recorded")


class FeedbackRequest(BaseModel):
    """An analyst's judgement of an alert."""

    judgement: Verdict = Field(description="false-hit: the topic should not have fired; confirmed: it was right to")
    note: str = Field("", max_length=500, description="why (free text)")


class FeedbackResult(BaseModel):
    alert_id: str
    judgement: JudgementView = Field(description="what is now recorded")
    previous: JudgementView | None = Field(None, description="what was recorded before, if anything")
    changed: bool = Field(description="false when the same judgement and note were already recorded (nothing "
                                      "written: repeating a request is harmless)")


class TopicSummary(BaseModel):
    id: str
    name: str
    description: str = ""
    articles: int = 0
    alerts: int = 0


class TopicPage(BaseModel):
    topic: TopicSummary
    per_day: list[DayCount]
    chart_unit: str = Field(description="day, week or month: the bucket of `chart`")
    chart: list[ChartBar]
    latest: list[Hit]
    alerts: list[AlertView]


class Place(BaseModel):
    id: str
    name: str
    type: str
    lat: float
    lon: float
    articles: int
    on_map: bool = Field(description="drawn as a circle: a point inside the map (Syria and its neighbours)")
    note: str = Field("", description="why it is not drawn, if it is not")


class PlacesMap(BaseModel):
    filters: SearchFilters
    places: list[Place]


class ArticleView(BaseModel):
    id: str
    url: str
    title: str
    text: str = ""
    source: str = ""
    published: str | None = None
    fetched_at: str | None = None
    authors: list[str] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    entities: list[EntityRef] = Field(default_factory=list)
    why: list[str] = Field(default_factory=list, description="why each topic fired")


FeedStatus = Literal["failing", "silent", "new", "ok"]


class OpsNotice(BaseModel):
    """What ops were told about a feed (the ops alarm state of ``alerts.sqlite3``, see ``feeds``)."""

    alerted: bool = Field(description="ops were told the feed is down and have not yet been told it recovered")
    state: Literal["down", "ok"] | None = Field(
        None, description="down: told it is down; ok: told it recovered; null: never alerted about this feed")
    event_id: str | None = Field(None, description="the latest ops event about this feed")
    since: str | None = Field(None, description="when the episode ops were told about began")
    at: str | None = Field(None, description="when that event was raised")
    channels: dict[str, AlertChannel] = Field(default_factory=dict, description="its delivery per channel")


class FeedView(BaseModel):
    """One configured feed's health, as ``feeds --json`` gives it (``pipeline.feedhealth.FeedHealth``)."""

    url: str
    name: str = ""
    status: FeedStatus = Field(description="failing: its latest poll failed; silent: nothing new for far longer "
                                           "than its usual rhythm; new: never polled; ok")
    problem: str | None = Field(None, description="one line: what is wrong, since when")
    problem_since: str | None = None
    alarm: bool = Field(False, description="the problem has lasted long enough to tell ops")
    last_polled: str | None = None
    last_success: str | None = None
    last_error: str | None = Field(None, description="the latest failed poll's message (kept after a recovery)")
    last_error_reason: str | None = Field(None, description="its short reason: timeout, http_503, malformed_feed, ...")
    last_error_at: str | None = None
    consecutive_failures: int = 0
    failing_since: str | None = None
    next_poll: str | None = None
    items_per_day: float | None = Field(None, description="new items a day over the last 14 days, the first "
                                                          "poll's backlog not counted (null: not measurable yet)")
    usual_gap_s: float | None = Field(None, description="usual seconds between new items, once known")
    last_new_item: str | None = None
    ops: OpsNotice


class FeedCounts(BaseModel):
    configured: int
    failing: int
    silent: int
    new: int
    ok: int
    alarm: int = Field(description="feeds whose problem has lasted long enough to tell ops")
    ops_alerted: int = Field(description="feeds ops were told are down and not yet told recovered")


class FeedsPage(BaseModel):
    checked_at: str
    feeds_file: str = Field(description="the feeds file read ($PIPELINE_FEEDS or config/feeds.yaml)")
    ops_alerts: bool = Field(description="whether ops alerts about feeds are on (ops.feed_alerts)")
    counts: FeedCounts = Field(description="per status, over every configured feed (whatever the filter)")
    status: FeedStatus | None = Field(None, description="the status filter, if any")
    feeds: list[FeedView] = Field(description="failing first (longest first), then silent (quiet longest first), "
                                              "then new, then ok; each by name within its status")


class ApiError(BaseModel):
    """Every error of the API: one line, never a stack trace."""

    error: str
    status: int
