"""Response helpers shared by the routes."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse, Response


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: the report is the bulk of the API's traffic. (A JSONResponse subclass,
    so that the OpenAPI schema documents the route's response model.)"""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class FhirJSONResponse(Response):
    media_type = "application/fhir+json"
