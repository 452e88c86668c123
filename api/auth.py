"""Authentication over HTTP: who is calling, from a session cookie (pages) or a bearer token (JSON API).

The primitives (password hashing, opaque tokens stored hashed, expiry) are
:class:`rcp_workflow.service.AuthService`'s; this module only carries tokens in and out of requests.

- Pages: ``POST /connexion`` (e-mail + password) sets the session cookie ``iatro_session``: HttpOnly (no
  script reads it), SameSite=Lax (not sent on cross-site posts), Secure when the request came over
  https, path ``/``, expiring with the session. A page without a valid session redirects to the login
  page (:class:`LoginRequired`).
- JSON API (``/v1/cases``...): ``Authorization: Bearer <token>``, a named API token
  (``POST /v1/auth/tokens``) or a session token (``POST /v1/auth/login``). The session cookie is not
  accepted there: an API reached with a cookie would need the CSRF defence too, and other software has
  no reason to hold a cookie. Without a valid token: 401 with ``WWW-Authenticate: Bearer``.

CSRF (cookie-authenticated form posts and htmx requests). Two defences:

1. a synchronizer token: every form carries ``csrf_token`` (htmx sends it as ``X-CSRF-Token`` from the
   page's ``hx-headers``), equal to a keyed hash of the session token. Another site cannot read the
   cookie, so it cannot compute the token; nothing is stored, and logging out invalidates it;
2. the ``Origin`` header, when the browser sends one (every current browser does on a POST), must be this
   server's own origin. It also protects the login form, which has no session yet.

SameSite=Lax on the cookie is a third, independent layer.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from api.deps import AuthDep
from iatro.errors import IatroError, PermissionDenied
from rcp_workflow.service import Actor, LoginSession

SESSION_COOKIE = "iatro_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotAuthenticated(IatroError):
    """No valid credentials on a request that needs them: HTTP 401 (API) or the login page (pages)."""


class LoginRequired(NotAuthenticated):
    """A page was asked for without a valid session: the browser goes to the login page."""


def csrf_token_for(session_token: str) -> str:
    # Keyed by the session token itself: unguessable without the cookie, and no server secret to keep.
    return hmac.new(session_token.encode(), b"iatro-csrf-v1", hashlib.sha256).hexdigest()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def page_actor(request: Request, auth: AuthDep) -> Actor | None:
    """The actor of the session cookie, or None (pages open to everyone show who is logged in).

    Sync on purpose, like :func:`require_api_actor`: it reads the database, so FastAPI runs it in the
    thread pool rather than on the event loop."""
    cached: Actor | None = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    token = session_token(request)
    actor = auth.resolve_session(token) if token else None
    request.state.actor = actor
    return actor


OptionalPageActorDep = Annotated[Actor | None, Depends(page_actor)]


async def require_page_actor(request: Request, actor: OptionalPageActorDep) -> Actor:
    if actor is None:
        raise LoginRequired("connexion requise")
    return actor


def require_api_actor(request: Request, auth: AuthDep) -> Actor:
    token = _bearer(request)
    if token is None:
        raise NotAuthenticated("authentication required: send 'Authorization: Bearer <token>'")
    actor = auth.resolve_api_token(token) or auth.resolve_session(token)
    if actor is None:
        raise NotAuthenticated("the bearer token is unknown, expired or revoked")
    request.state.actor = actor
    return actor


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin; True when it says nothing."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # No Origin: not a browser form or fetch of today (curl, a test client). "null" comes from
        # privacy-sensitive contexts; the CSRF token still guards those.
        return origin is None
    return origin.rstrip("/") == f"{request.url.scheme}://{request.url.netloc}"


async def check_csrf(request: Request) -> None:
    """For unsafe methods on cookie-authenticated pages: same origin, and the session's CSRF token."""
    if request.method in _SAFE_METHODS:
        return
    if not same_origin(request):
        raise PermissionDenied("requête refusée : origine différente de ce serveur")
    token = session_token(request)
    if token is None:
        return  # no session: the page's own login check answers
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if sent is None or not hmac.compare_digest(sent, csrf_token_for(token)):
        raise PermissionDenied("jeton anti-CSRF absent ou invalide : rechargez la page")


async def check_login_origin(request: Request) -> None:
    if not same_origin(request):
        raise PermissionDenied("requête refusée : origine différente de ce serveur")


PageActorDep = Annotated[Actor, Depends(require_page_actor)]
ApiActorDep = Annotated[Actor, Depends(require_api_actor)]
CsrfDep = Depends(check_csrf)


def set_session_cookie(response: Response, request: Request, session: LoginSession) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        expires=session.expires_at,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )
