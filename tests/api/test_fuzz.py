"""Property-based fuzzing of the OpenAPI schema (schemathesis): no input makes the server fail (5xx).

The schema is generated from ``create_app()`` without starting it (no KB load at import); the calls
go to the session's running app. Bounded: a few dozen examples per operation, derandomised so a run
is reproducible, keeping the whole API suite under a minute on two cores.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app

schema = schemathesis.openapi.from_dict(create_app().openapi())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _send(client: TestClient, case: Any) -> Any:
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs.get("headers"),
        "params": kwargs.get("params"),
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        request["content"] = kwargs["data"]
    return client.request(**request)


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_server_fail(case: Any, client: TestClient) -> None:
    response = _send(client, case)
    case.validate_response(response, checks=CHECKS)
