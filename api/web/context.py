"""Rendering a page: the template, plus what every page needs (who is logged in, the CSRF token)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.auth import csrf_token_for, session_token
from api.web.labels import ROLE_LABELS
from api.web.templating import templates


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The template with ``actor`` (None when nobody is logged in) and ``csrf_token`` added."""
    actor = getattr(request.state, "actor", None)
    token = session_token(request)
    context.setdefault("actor", actor)
    context.setdefault("csrf_token", csrf_token_for(token) if token and actor is not None else "")
    context.setdefault("ROLE_LABELS", ROLE_LABELS)
    context.setdefault("flash", _FLASH.get(request.query_params.get("ok", ""), ""))
    return templates().TemplateResponse(request, template, context, status_code=status_code)


async def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """:func:`render` for pages open to all: looks the session up first, to show who is logged in."""
    if getattr(request.state, "actor", None) is None:
        token = session_token(request)
        workflow = request.app.state.iatro.workflow
        if token and workflow is not None:
            request.state.actor = workflow.auth.resolve_session(token)
    return render(request, template, status_code=status_code, **context)


# Confirmation messages after a redirect (?ok=key): fixed texts, so no user input is reflected.
_FLASH: dict[str, str] = {
    "created": "Dossier créé.",
    "included": "Patient inclus.",
    "review": "Revue de médication commencée.",
    "analysis": "Nouvelle liste de médicaments analysée.",
    "recommendation": "Recommandation ajoutée.",
    "planned": "RCP planifiée.",
    "held": "RCP tenue : décisions enregistrées.",
    "ppp": "Plan pharmaceutique personnalisé émis.",
    "followup": "Suivi enregistré.",
    "billing": "Facturation mise à jour.",
    "closed": "Dossier clôturé.",
    "stopped": "Parcours arrêté.",
    "participant": "Participant ajouté.",
    "message": "Message enregistré.",
    "bpm": "Étape du bilan enregistrée.",
    "logout": "Vous êtes déconnecté.",
}
