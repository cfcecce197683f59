"""What the passes of one continuous ``run`` share (:class:`RunSession`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .bus import MessageBus, open_bus
from .config import Config, FeedConfig
from .fetch import SafeFetcher
from .jobs import Drainer, DrainSummary, ExtractPool, IngestSummary, ingest

__all__ = ["RunSession"]


class RunSession:
    """What the passes of one continuous ``run`` share, so that no pass repeats the start-up of the last:

    - the fetcher: kept-alive connections, the vetted addresses of hosts (``fetch.dns_cache_seconds``),
      robots.txt rules (an hour), and politeness spacing that carries over from pass to pass;
    - the extraction processes, started by the first pass that finds something new, then kept;
    - on the embedded bus, the enrich, alert and index stages of the drain (the tagger is built once).

    :meth:`ingest` and :meth:`drain` take the arguments of the module's :func:`ingest` and :func:`drain`
    and report on their own pass only; on the embedded bus the stages also take a pass's articles while it
    goes on (:meth:`drain_published`), whenever it waits for its slowest pages, so alerts need not wait for
    them. ``close()`` (or the ``with`` block's end) releases everything.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.fetcher = SafeFetcher(config.settings.fetch)
        self.extract_pool = ExtractPool(config.settings.extract.workers)
        self._bus: MessageBus | None = None
        self._drainer: Drainer | None = None

    def ingest(self, config: Config, feeds: Sequence[FeedConfig] | None = None, **kwargs: Any) -> IngestSummary:
        return ingest(config, feeds, session=self, **kwargs)

    def _stages(self) -> Drainer:
        if self._drainer is None:
            self._bus = open_bus(self.config.settings)
            self._drainer = Drainer(self.config, self._bus)
        return self._drainer

    def drain_published(self) -> None:
        """Called by a pass whenever it has published articles and has a moment: on the embedded bus the stages
        take them at once, so an alert goes out before the slowest page of the pass is fetched."""
        if self.config.settings.bus == "sqlite":
            self._stages().pass_once()

    def drain(self, config: Config, *, deliver_wait: float = 0.0) -> DrainSummary:
        drainer = self._stages()
        drainer.pass_once()
        drainer.finish(deliver_wait)
        summary = drainer.summary()
        drainer.reset_counts()
        return summary

    def close(self) -> None:
        try:
            if self._drainer is not None:
                self._drainer.close()
            if self._bus is not None:
                self._bus.close()
        finally:
            self._drainer, self._bus = None, None
            self.fetcher.close()
            self.extract_pool.shutdown()

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
