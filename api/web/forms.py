"""Reading the workflow's HTML forms into the service's input objects, with errors naming the field.

Browsers send every value as text; these helpers turn checkboxes, dates and lists into what the
service's frozen inputs expect, and a pydantic validation error into :class:`FieldError` (shown on
the page, status 422) rather than a 500.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from iatro.errors import FieldError

Model = TypeVar("Model", bound=BaseModel)


class Form:
    """The submitted form: single values by name, and every value of a repeated name."""

    def __init__(self, single: dict[str, str], multi: dict[str, list[str]]) -> None:
        self.single = single
        self.multi = multi

    def get(self, name: str, default: str = "") -> str:
        return self.single.get(name, default).strip()

    def optional(self, name: str) -> str | None:
        return self.get(name) or None

    def checked(self, name: str) -> bool:
        return name in self.single

    def all(self, name: str) -> list[str]:
        return [v.strip() for v in self.multi.get(name, []) if v.strip()]

    def integer(self, name: str) -> int | None:
        raw = self.get(name)
        if not raw:
            return None
        if not raw.lstrip("-").isdigit():
            raise FieldError(name, f"{raw!r} n'est pas un nombre entier")
        return int(raw)

    def version(self) -> int:
        """The case version the page was rendered with: the service refuses a stale one (409)."""
        version = self.integer("version")
        if version is None:
            raise FieldError("version", "version du dossier absente du formulaire : rechargez la page")
        return version


async def read_form(request: Request) -> Form:
    data = await request.form()
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in data.multi_items():
        if isinstance(value, str):
            single.setdefault(key, value)
            multi.setdefault(key, []).append(value)
    return Form(single, multi)


def build(model: type[Model], data: dict[str, Any], prefix: str = "") -> Model:
    """``model`` from ``data``; the first validation error becomes a FieldError naming its field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        field = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "(formulaire)")
        raise FieldError(field, str(first.get("msg", "invalide"))) from None
