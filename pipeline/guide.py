"""What a first-time user is told at the end of the demo: where the alerts went, what to try next."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .config import Settings

__all__ = ["alert_destinations", "next_steps", "command_prefix"]


def command_prefix() -> str:
    """How to run the CLI again from here: ``.venv/bin/python -m pipeline`` in a checkout, else ``newswatch``."""
    exe = Path(sys.executable)
    try:
        rel = os.path.relpath(exe)
    except ValueError:  # another drive (Windows)
        rel = str(exe)
    if not rel.startswith(".."):
        return f"{rel if os.sep in rel else './' + rel} -m pipeline"
    return "newswatch"


def alert_destinations(settings: Settings) -> str:
    """Where alerts are delivered, in one line (no secrets: only which variables are set)."""
    places = []
    if settings.alerts.smtp_url is not None and settings.alerts.smtp_url.get_secret_value():
        places.append("email through the SMTP server in SMTP_URL")
    if settings.alerts.slack_webhook_url is not None and settings.alerts.slack_webhook_url.get_secret_value():
        places.append("Slack through SLACK_WEBHOOK_URL")
    if places:
        return "alerts go to " + " and ".join(places) + "; delivery status: `alerts`"
    return (f"alerts were written to {settings.alerts_path} (no SMTP_URL or SLACK_WEBHOOK_URL set; set one to "
            "send email or Slack)")


def next_steps(settings: Settings, feeds_file: Path | None = None) -> list[str]:
    """A few commands worth trying after the demo, each with what it shows, aligned; the last is the
    command that serves the web page over the demo's data (with ``feeds_file``, the demo's feeds)."""
    cli = command_prefix()
    steps = [
        (f'{cli} search "Deir Ezzor"', "ranked search of what was indexed (any spelling of a place)"),
        (f"{cli} alerts", "every alert and each channel's delivery status"),
        (f"{cli} tag - <<< 'Clashes near At Tanf'", "places, actors and topics of any text"),
        (f"{cli} status", "messages per topic, consumer lag, indexed documents"),
        ("make run", "again: nothing new is indexed, no alert is sent twice"),
    ]
    width = max(len(command) for command, _ in steps) + 3
    lines = [f"{command:<{width}}{what}" for command, what in steps]
    origin = settings.origin("data_dir")
    if origin.startswith("environment variable"):
        lines.append(f"(they read the data in {settings.data_dir}: keep PIPELINE_DATA_DIR set for them)")
    lines.append("the web page over this data (search, topics, map, alerts, feeds) on http://127.0.0.1:8000/:")
    feeds = f"PIPELINE_FEEDS={feeds_file} " if feeds_file is not None else ""
    lines.append(f"  {feeds}{cli} serve")
    return lines
