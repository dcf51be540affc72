"""Property-based: schemathesis sends requests generated from /openapi.json; none may get a 5xx.

It also checks that every status code and body the API returns is one the schema documents.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from lenet5.predict import load  # noqa: E402
from lenet5.web.app import create_app  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def web_schema(trained_run: Path):
    app = create_app(load(trained_run), max_upload_bytes=64 * 1024)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


# schemathesis' own pytest plugin cannot resolve fixtures under pytest 9, so the generated
# requests run through hypothesis directly: valid requests first, then invalid ones.
@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(web_schema, mode) -> None:
    @given(case=web_schema.as_strategy(generation_mode=mode))
    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def call(case) -> None:
        case.call_and_validate(checks=CHECKS)

    call()
