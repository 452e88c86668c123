"""The web pages of the RCP workflow (French, server-rendered, htmx), served by the API's app.

``install(app)`` adds the page routes and the static files (CSS, the vendored htmx). The pages call the
same services as the JSON API (:mod:`api.routes.workflow`); errors become French HTML pages
(:mod:`api.web.errors`) with the statuses of the one error table.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web.templating import STATIC_DIR


def install(app: FastAPI) -> None:
    from api.web.pages import analysis, auth, cases, rcp

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (auth, analysis, cases, rcp):
        app.include_router(module.router)
