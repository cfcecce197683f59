"""Exit codes of newswatch commands, and the rule that turns a pass's tallies into one.

=====  =====================  ==============================================================
code   name                   meaning
=====  =====================  ==============================================================
0      ``OK``                 everything attempted succeeded (expected drops such as "not an
                              article" or a dead link are not failures)
1      ``SOME_FAILED``        some feeds could not be read, some articles not fetched, or
                              some alert messages not delivered; the rest went through
2      ``USAGE``              bad usage or configuration: nothing was done
3      ``NOTHING_SUCCEEDED``  at some stage nothing succeeded: every feed poll failed, every
                              article fetch failed, or not one owed alert message was delivered
130    ``INTERRUPTED``        stopped by SIGINT/SIGTERM before the work was done
=====  =====================  ==============================================================

Code 3 is per stage, on purpose: "every article fetch failed while the feeds were read" and
"no email left while articles were indexed" are outages to act on now (a network, a proxy, an
SMTP server), not scattered bad sources; a cron job or a supervisor can tell them apart from 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["OK", "SOME_FAILED", "USAGE", "NOTHING_SUCCEEDED", "INTERRUPTED", "StageTally", "exit_code",
           "describe"]

OK = 0
SOME_FAILED = 1
USAGE = 2
NOTHING_SUCCEEDED = 3
INTERRUPTED = 130

_MEANING = {
    OK: "all good",
    SOME_FAILED: "some failures",
    USAGE: "bad usage or configuration",
    NOTHING_SUCCEEDED: "nothing succeeded",
    INTERRUPTED: "interrupted",
}


@dataclass
class StageTally:
    """What one stage of a pass attempted: ``succeeded`` + ``failed`` units, failures by reason."""

    stage: str
    succeeded: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def attempted(self) -> int:
        return self.succeeded + self.failed


def exit_code(tallies: Iterable[StageTally]) -> int:
    """``OK`` when nothing failed; ``NOTHING_SUCCEEDED`` when a stage had failures and no success;
    ``SOME_FAILED`` otherwise."""
    tallies = list(tallies)
    if not any(t.failed for t in tallies):
        return OK
    if any(t.failed and not t.succeeded for t in tallies):
        return NOTHING_SUCCEEDED
    return SOME_FAILED


def describe(code: int) -> str:
    """A few words for an exit code (``some failures``)."""
    return _MEANING.get(code, f"exit {code}")
