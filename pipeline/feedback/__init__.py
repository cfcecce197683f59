"""Analysts' feedback on the tagger: judgements stored in the data directory, exportable, scored by ``eval-tags``.

Library: :class:`FeedbackStore`, :func:`record_false_hit`, :func:`record_confirmed`, :func:`record_missed`.
CLI: ``feedback`` (see :mod:`pipeline.feedback.cli`); web: the alerts page's buttons (:mod:`pipeline.web`).
"""

from __future__ import annotations

from .store import KINDS, POSITIVE_KINDS, FeedbackStore, Judgement, record_confirmed, record_false_hit, record_missed

__all__ = ["KINDS", "POSITIVE_KINDS", "FeedbackStore", "Judgement", "record_confirmed", "record_false_hit",
           "record_missed"]
