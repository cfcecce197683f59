"""The consuming stages: enrich, index, alert. Each is a thin adapter over a plain function.

A :class:`Stage` knows nothing of how it is driven: ``pipeline.worker.run_stage`` runs it as
a long-lived worker (``python -m pipeline worker NAME``) or drains it once (embedded run).

Contract of :meth:`Stage.handle`: it receives a batch from ONE of its input topics,
publishes its outputs before returning, and returns the messages that failed (with a
reason and whether retrying may help). Messages not returned succeeded. A
:class:`~pipeline.errors.PipelineError` with ``transient=True`` raised from ``handle``
means "the whole batch should be retried" (e.g. the index is unreachable).

A stage may also have ``idle()``: a long-running worker calls it when a poll of every input
found nothing (see :mod:`pipeline.worker`); the alert stage retries due deliveries there.

Stage graph::

    news.articles.raw --enrich--> news.articles.enriched --alert--> news.alerts
                                              |                          |
                                              +--------- index <---------+
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from .bus import TOPIC_ALERTS, TOPIC_ENRICHED, TOPIC_RAW, Message, MessageBus, OutMessage
from .config import Config
from .errors import InputError
from .models import SCHEMA_VERSION, AlertRecord, Article, EnrichedArticle

__all__ = [
    "MessageFailure",
    "Stage",
    "EnrichStage",
    "IndexStage",
    "AlertStage",
    "STAGE_NAMES",
    "build_stage",
    "enrich_article",
]

log = logging.getLogger(__name__)

STAGE_NAMES = ("enrich", "alert", "index")  # the order an embedded drain runs them in


@dataclass
class MessageFailure:
    message: Message
    error: str
    transient: bool = False


class Stage(Protocol):
    name: str
    topics: tuple[str, ...]
    group: str

    def handle(self, messages: list[Message]) -> list[MessageFailure]: ...

    def close(self) -> None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_version(msg: Message) -> dict[str, Any]:
    value = msg.value
    if not isinstance(value, dict):
        raise ValueError("message value is not a JSON object")
    version = value.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"unknown schema_version {version!r} (this build reads {SCHEMA_VERSION})")
    return value


def enrich_article(article: Article, tagger: Any) -> EnrichedArticle:
    """Tag one article: the plain function under the enrich stage."""
    return EnrichedArticle(article=article, tags=tagger.tag(article.text, article.title), enriched_at=_now())


class EnrichStage:
    """news.articles.raw -> tag places, actors and topics -> news.articles.enriched."""

    name = "enrich"
    topics: tuple[str, ...] = (TOPIC_RAW,)
    group = "newswatch-enrich"

    def __init__(self, config: Config, bus: MessageBus, tagger: Any | None = None) -> None:
        from .enrich import Tagger

        self.bus = bus
        self.tagger = tagger if tagger is not None else Tagger.load(watchlist=config.watchlist,
                                                                   overlay=config.settings.catalogue_overlay)
        self.count = 0

    def handle(self, messages: list[Message]) -> list[MessageFailure]:
        failures: list[MessageFailure] = []
        out: list[OutMessage] = []
        for msg in messages:
            try:
                article = Article.from_dict(_check_version(msg))
                if article.id != msg.key:
                    raise ValueError(f"message key {msg.key!r} is not the article id {article.id!r}")
                enriched = enrich_article(article, self.tagger)
            except (ValueError, TypeError, KeyError) as exc:
                failures.append(MessageFailure(msg, f"cannot enrich: {exc}", transient=False))
                continue
            out.append(OutMessage(key=article.id, value=enriched.to_dict()))
            log.debug("enriched doc=%s topics=%s offset=%s", article.id, enriched.tags.topic_ids, msg.offset)
        self.bus.publish(TOPIC_ENRICHED, out)
        self.count += len(out)
        return failures

    def close(self) -> None:
        pass


class IndexStage:
    """news.articles.enriched -> search index (create-if-absent); news.alerts -> alert index."""

    name = "index"
    topics: tuple[str, ...] = (TOPIC_ENRICHED, TOPIC_ALERTS)
    group = "newswatch-index"

    def __init__(self, config: Config, bus: MessageBus, index: Any | None = None) -> None:
        from .index import open_index

        self.index = index if index is not None else open_index(config.settings)
        self._own_index = index is None
        self.created = 0
        self.existing = 0

    def handle(self, messages: list[Message]) -> list[MessageFailure]:
        failures: list[MessageFailure] = []
        docs: list[dict[str, Any]] = []
        by_id: dict[str, Message] = {}
        alerts_topic = messages and messages[0].topic == TOPIC_ALERTS
        for msg in messages:
            try:
                value = _check_version(msg)
                doc = AlertRecord.from_dict(value["alert"]).to_dict() if alerts_topic else (
                    EnrichedArticle.from_dict(value).to_document()
                )
            except (ValueError, TypeError, KeyError) as exc:
                failures.append(MessageFailure(msg, f"cannot index: {exc}", transient=False))
                continue
            docs.append(doc)
            by_id[doc["id"]] = msg
        if not docs:
            return failures
        report = self.index.index_alerts(docs) if alerts_topic else self.index.index_documents(docs)
        if not alerts_topic:
            self.created += report.created
            self.existing += report.existing
        for doc_id, reason in report.failed:
            failed_msg = by_id.get(doc_id)
            if failed_msg is not None:
                failures.append(MessageFailure(failed_msg, f"index rejected doc {doc_id}: {reason}", transient=False))
        log.info("indexed batch topic=%s created=%d existing=%d failed=%d",
                 messages[0].topic, report.created, report.existing, len(report.failed))
        return failures

    def close(self) -> None:
        if self._own_index:
            self.index.close()


class AlertStage:
    """news.articles.enriched -> alert records (once per topic and story) -> news.alerts, then delivery."""

    name = "alert"
    topics: tuple[str, ...] = (TOPIC_ENRICHED,)
    group = "newswatch-alert"

    def __init__(self, config: Config, bus: MessageBus, service: Any | None = None,
                 *, alert_on_replay: bool = False) -> None:
        from .alerts import AlertService

        self.bus = bus
        self.service = service if service is not None else AlertService(config.settings, config.watchlist)
        self._own_service = service is None
        self.alert_on_replay = alert_on_replay
        self.raised: list[AlertRecord] = []

    def handle(self, messages: list[Message]) -> list[MessageFailure]:
        failures: list[MessageFailure] = []
        articles: list[EnrichedArticle] = []
        for msg in messages:
            try:
                articles.append(EnrichedArticle.from_dict(_check_version(msg)))
            except (ValueError, TypeError, KeyError) as exc:
                failures.append(MessageFailure(msg, f"cannot read enriched article: {exc}", transient=False))
        new = self.service.raise_alerts(articles, alert_on_replay=self.alert_on_replay)
        self.raised.extend(new)
        # Publish every alert of this batch's stories, not only the new ones: if this publish fails the
        # batch is redelivered, raise_alerts() then returns [], and the alerts must still reach the bus.
        on_bus = self.service.alerts_for(articles)
        if on_bus:
            self.bus.publish(
                TOPIC_ALERTS,
                [OutMessage(key=a.id, value={"schema_version": SCHEMA_VERSION, "alert": a.to_dict()}) for a in on_bus],
            )
        self.service.deliver_pending()
        return failures

    def idle(self) -> None:
        """No new articles: deliver the outbox rows whose retry time has come (a cheap check when none has)."""
        self.service.deliver_due()

    def finish(self, max_seconds: float) -> None:
        """Keep delivering pending alerts (waiting out Retry-After and backoff) for up to ``max_seconds``."""
        report = self.service.deliver_pending(max_seconds=max_seconds)
        log.info("final delivery: %s", report)

    def close(self) -> None:
        if self._own_service:
            self.service.close()


def build_stage(name: str, config: Config, bus: MessageBus, **kwargs: Any) -> Stage:
    """The stage called ``name`` (``enrich``, ``index`` or ``alert``) wired to ``bus``."""
    if name == "enrich":
        return EnrichStage(config, bus, **kwargs)
    if name == "index":
        return IndexStage(config, bus, **kwargs)
    if name == "alert":
        return AlertStage(config, bus, **kwargs)
    raise InputError(f"unknown stage {name!r}: expected one of {', '.join(STAGE_NAMES)}")


def stage_counts(stages: Sequence[Stage]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for st in stages:
        if isinstance(st, EnrichStage):
            out["enriched"] = st.count
        elif isinstance(st, IndexStage):
            out["indexed"] = st.created
            out["already_indexed"] = st.existing
        elif isinstance(st, AlertStage):
            out["alerts_raised"] = len(st.raised)
    return out


