"""Analysts' feedback on the tagger: judgements stored in the data directory, exportable, scored by ``eval-tags``.

Library: :class:`FeedbackStore`, :func:`record_false_hit`, :func:`record_missed`. CLI: ``feedback``
(see :mod:`pipeline.feedback.cli`).
"""

from __future__ import annotations

from .store import KINDS, FeedbackStore, Judgement, record_false_hit, record_missed

__all__ = ["KINDS", "FeedbackStore", "Judgement", "record_false_hit", "record_missed"]
