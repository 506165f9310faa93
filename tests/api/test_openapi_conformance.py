"""Every API operation against the OpenAPI document it publishes.

Requests are generated from the document itself (schemathesis, on hypothesis): query
parameters, headers and bodies that fit the schema, with path parameters naming real rows of one
tenant (``tests.api.tenant_world``) so that the requests get past "not found" into the
handlers; then the same with generated path parameters; then requests that break the schema.
Whoever calls, whatever is sent, the answer must be one the document describes: no 5xx, a
documented status code and content type, a body that matches the documented schema, and
problem+json for every error (the Handle resolution route answers in the Handle shape instead,
as identifier clients expect).

Operations are discovered from the application, so a route added later is covered without
touching this file. The examples are derandomized: a failure reproduces on every run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
import schemathesis.checks as checks
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.api.tenant_world import build_two_tenants

#: The passes: how requests are made, whether path parameters name real rows, how many requests
#: per operation (about 120 operations, two callers).
PASSES = {
    "real rows": (GenerationMode.POSITIVE, True, 8),
    "generated paths": (GenerationMode.POSITIVE, False, 3),
    "schema broken": (GenerationMode.NEGATIVE, False, 4),
}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
#: Answers in the Handle REST API's own shape, not problem+json (docs/oss.md).
HANDLE_SHAPED = "/api/handles/"


@dataclass
class Finding:
    operation: str
    problem: str
    request: str
    status: int
    body: str

    def __str__(self) -> str:
        return (
            f"{self.operation}: {self.problem}\n    request: {self.request}\n"
            f"    answer: {self.status} {self.body[:400]}"
        )


def _problem(case: Any, response: Any) -> str | None:
    """What is wrong with the answer, or None."""
    content_type = str(response.headers.get("content-type", ""))
    if (
        response.status_code >= 400
        and "application/problem+json" not in content_type
        and not case.path.startswith(HANDLE_SHAPED)
    ):
        return f"an error answered as {content_type or 'no content type'}, not problem+json"
    try:
        case.validate_response(response, checks=CHECKS)
    except BaseException as exc:  # schemathesis raises a FailureGroup, a BaseExceptionGroup
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        return " ".join(str(exc).split())[:600]
    return None


def run_operation(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    headers: dict[str, str],
    path_values: dict[str, str],
    report: Callable[[Finding], None],
) -> int:
    """Send the operation its generated requests; report what is wrong; return how many
    requests were sent (0 when the mode can make none, e.g. nothing to break)."""
    names = [p.name for p in operation.path_parameters]
    fixed = {name: path_values[name] for name in names if name in path_values}
    sent = [0]
    found: list[Finding] = []

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
    def send(case: Any) -> None:
        request = f"query={case.query!r} body={str(case.body)[:300]}"
        operation_name = f"{case.method} {case.formatted_path}"
        sent[0] += 1
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the test client re-raises what the app did not handle
            if len(found) < 2:
                found.append(Finding(operation_name, "unhandled error", request, 500, repr(exc)))
            return
        problem = _problem(case, response)
        if problem and len(found) < 2:
            found.append(
                Finding(operation_name, problem, request, response.status_code, response.text)
            )

    # Unsatisfiable: the mode can make no request, e.g. nothing of the operation to break.
    with contextlib.suppress(Unsatisfiable):
        send()
    for finding in found:
        report(finding)
    return sent[0]


@pytest.fixture
def tenant_b(client, world, ctx):
    b, _ = build_two_tenants(client, world, ctx)
    return b


@pytest.mark.parametrize(
    ("caller", "kind"),
    [
        ("operator admin", "real rows"),
        ("operator admin", "generated paths"),
        ("operator admin", "schema broken"),
        ("customer admin", "real rows"),
        ("customer admin", "generated paths"),
        # Requests that break the schema exercise validation, the same for every caller; the
        # operator's admin reaches every operation's validation, a customer only its own.
    ],
)
def test_every_operation_answers_as_its_document_says(app, world, tenant_b, caller, kind):
    mode, real_rows, examples = PASSES[kind]
    headers = world.admin_headers() if caller == "operator admin" else tenant_b.own_headers
    path_values = tenant_b.path_values() if real_rows else {}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    findings: list[Finding] = []
    operations = sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        sent += run_operation(operation, mode, examples, headers, path_values, findings.append)
    print(f"\n{caller}, {kind}: {operations} operations, {sent} requests")
    assert operations >= 100, "the document lost its operations"
    assert sent >= operations * (2 if mode is GenerationMode.POSITIVE else 1 / 2)
    assert not findings, "\n".join(str(f) for f in findings)


def test_the_check_catches_an_undocumented_answer(ctx, world):
    """A route that answers an error as plain JSON, and one whose body is not its schema, are
    both reported (the checks are live, not decoration)."""
    from fastapi import APIRouter
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel

    from satiot.server import build_app

    class Shaped(BaseModel):
        count: int

    broken = APIRouter()

    @broken.get("/api/v1/broken/plain-error", response_model=None)
    def plain_error():
        return JSONResponse({"error": "nope"}, status_code=400)

    @broken.get("/api/v1/broken/wrong-shape", response_model=Shaped)
    def wrong_shape():  # the response bypasses the model
        return JSONResponse({"count": "many"})

    other = build_app(ctx)
    other.include_router(broken)
    schema = schemathesis.openapi.from_asgi("/openapi.json", other)
    findings: list[Finding] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/api/v1/broken/"):
            run_operation(
                operation, GenerationMode.POSITIVE, 3, world.admin_headers(), {}, findings.append
            )
    reported = {f.operation: f.problem for f in findings}
    assert "not problem+json" in reported["GET /api/v1/broken/plain-error"]
    assert "GET /api/v1/broken/wrong-shape" in reported
