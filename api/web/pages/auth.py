"""Login and logout pages, and the site's root."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth import (
    OptionalPageActorDep,
    check_csrf,
    check_login_origin,
    clear_session_cookie,
    session_token,
    set_session_cookie,
)
from api.deps import AuthDep
from api.web.context import render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only a path on this site: "//evil.example" or "https://..." would make the login an open redirect.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/dossiers"
    return target


@router.get("/", name="web_home")
async def home(actor: OptionalPageActorDep) -> RedirectResponse:
    return RedirectResponse("/dossiers" if actor else "/connexion", status_code=303)


@router.get("/connexion", name="web_login", response_class=HTMLResponse)
async def login_form(request: Request, actor: OptionalPageActorDep, suite: str | None = None) -> Response:
    if actor is not None:
        return RedirectResponse(_safe_next(suite), status_code=303)
    return render(request, "login.html", suite=_safe_next(suite), email="")


@router.post("/connexion", dependencies=[Depends(check_login_origin)], response_class=HTMLResponse)
async def login(
    request: Request,
    auth: AuthDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    suite: Annotated[str, Form(max_length=2000)] = "/dossiers",
) -> Response:
    session = await run_in_threadpool(auth.login, email.strip(), password)
    if session is None:
        # One message for an unknown e-mail and a wrong password: the page does not tell which e-mails exist.
        return render(
            request,
            "login.html",
            status_code=401,
            suite=_safe_next(suite),
            email=email,
            error="E-mail ou mot de passe incorrect.",
        )
    response = RedirectResponse(_safe_next(suite), status_code=303)
    set_session_cookie(response, request, session)
    return response


@router.post("/deconnexion", name="web_logout", dependencies=[Depends(check_csrf)])
async def logout(request: Request, auth: AuthDep) -> RedirectResponse:
    token = session_token(request)
    if token:
        await run_in_threadpool(auth.logout, token)
    response = RedirectResponse("/connexion?ok=logout", status_code=303)
    clear_session_cookie(response, request)
    return response
