"""The embedded notifier: appends each message as one JSON line to a file.

Used when neither SMTP nor Slack is configured, so the demo and tests see every alert.
Each line is ``{"id", "subject", "text", "slack", "recipients", "sent_at"}``; a line is
written with one ``write`` + ``fsync`` so a crash leaves whole lines only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from ...errors import TransientNotifyError
from ..render import Rendered
from . import SendResult

__all__ = ["FileNotifier"]

log = logging.getLogger(__name__)


class FileNotifier:
    channel = "file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def send(self, message: Rendered, recipients: Sequence[str]) -> SendResult:
        line = json.dumps({
            "id": message.msg_id, "subject": message.subject, "text": message.text, "slack": message.slack,
            "recipients": list(recipients), "sent_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }, ensure_ascii=False)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise TransientNotifyError(f"cannot append to {self.path}: {exc.strerror or exc}") from None
        log.info("alert %s written to %s", message.msg_id, self.path)
        return SendResult(detail=str(self.path))

    def close(self) -> None:
        return None
