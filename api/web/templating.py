"""The Jinja2 environment of the web pages: where the templates are, and the French formatting filters.

Built on first use (``templates()``), not at import. Autoescaping is on for every template (Starlette's
default for ``.html``): a drug name or a comment typed by a user is text, never markup.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

from api.web import labels
from api.web.analysis_view import LINE_STATUS_LABELS, SEVERITY_LABELS

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

# The pages are read in France; the workflow stores UTC (SQLite hands it back without a zone).
DISPLAY_ZONE = ZoneInfo("Europe/Paris")

_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def date_fr(value: Any) -> str:
    """``2026-11-24`` → ``24 novembre 2026``; a datetime also gets its time (``à 14 h 05``)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        text = value
        try:
            value = dt.datetime.fromisoformat(text) if "T" in text else dt.date.fromisoformat(text)
        except ValueError:
            return text
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(DISPLAY_ZONE)
        return f"{value.day} {_MONTHS[value.month - 1]} {value.year} à {value.hour} h {value.minute:02d}"
    if isinstance(value, dt.date):
        return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"
    return str(value)


def number_fr(value: Any, digits: int = 1) -> str:
    """A French decimal: ``27.5`` → ``27,5``; integers stay integers."""
    if value is None:
        return ""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.{digits}f}".replace(".", ",")
    return str(value)


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    engine = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = engine.env
    env.trim_blocks = True
    env.lstrip_blocks = True
    env.filters["date_fr"] = date_fr
    env.filters["number_fr"] = number_fr
    env.globals["SEVERITY_LABELS"] = SEVERITY_LABELS
    env.globals["LINE_STATUS_LABELS"] = LINE_STATUS_LABELS
    for name in dir(labels):
        if name.endswith("_LABELS") or name.endswith("_STEPS"):
            env.globals[name] = getattr(labels, name)
    return engine
