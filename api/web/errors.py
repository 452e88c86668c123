"""Errors on the web pages: an HTML page in French with the status the JSON API would give.

The mapping from error class to status is :mod:`api.errors`'s (one table); only the words differ.
A page asked for without a session goes to the login page, then back where it was.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import LoginRequired
from api.errors import status_of
from api.web.context import render
from iatro.errors import ConflictError, FieldError, IatroError, InvalidTransition, PermissionDenied

# The paths of the pages (everything else is the JSON API, FHIR, CDS Hooks, docs).
PAGE_PREFIXES: tuple[str, ...] = ("/dossiers", "/connexion", "/deconnexion", "/analyser")


def is_page(request: Request) -> bool:
    path = request.url.path
    return path == "/" or any(path == p or path.startswith(p + "/") for p in PAGE_PREFIXES)


_TITLES: tuple[tuple[type[IatroError], str], ...] = (
    (ConflictError, "Le dossier a changé entre-temps"),
    (InvalidTransition, "Action impossible à cette étape"),
    (PermissionDenied, "Accès refusé"),
    (FieldError, "Saisie invalide"),
)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = request.headers.get("referer", "/dossiers")
    return RedirectResponse(f"/connexion?suite={quote(target, safe='')}", status_code=303)


def html_error(request: Request, exc: IatroError) -> Response:
    if isinstance(exc, LoginRequired):
        return login_redirect(request)
    status, _ = status_of(exc)
    title = next((t for cls, t in _TITLES if isinstance(exc, cls)), "Erreur")
    if status >= 500:
        title, message = "Service indisponible", "Le service n'est pas prêt ; réessayez dans un instant."
    else:
        message = str(exc)
    fragment = bool(request.headers.get("hx-request"))
    response = render(
        request,
        "_error_box.html" if fragment else "error.html",
        status_code=status,
        title=title,
        message=message,
        conflict=isinstance(exc, ConflictError),
        back=request.headers.get("referer"),
    )
    if fragment:
        # htmx does not swap error responses by default; this shows the message where the row was.
        response.headers["HX-Retarget"] = "#messages-erreur"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def html_not_found(request: Request) -> HTMLResponse:
    return render(request, "error.html", status_code=404, title="Page introuvable", message=request.url.path)
