"""`GET /openapi.json`: a valid OpenAPI 3.1 description of every route, and schemathesis run over
every route of it against both servers a user starts (the production server, and `chalice local`
through `serve --server chalice`): no server error, no response off the description.

schemathesis runs with every check but `negative_data_rejection`: the API is lenient by design
where pydantic's lax mode is (a number for an id, a numeric string for a number), so a request
the description calls invalid may be accepted; `positive_data_acceptance` does run, so every
request the description calls valid must be accepted. Its summary is kept under `artifacts/`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from chalice.test import Client
from openapi_spec_validator import validate

from chalicelib.api import routes
from chalicelib.config import load_config
from chalicelib.settings import Settings
from tests.conftest import AUTH, DEV_KEY
from tests.functional.artifacts import ARTIFACTS
from tests.functional.live import LiveServer
from tests.functional.support import assert_error, get

ST = Path(sys.executable).parent / "st"
# The run is bounded (about a minute on a quiet machine): every phase on the production server;
# on `chalice local` (the same app through Chalice's routing) the coverage phase, which tries
# every parameter's boundaries and every method, and a shorter fuzzing phase.
RUNS = {
    "production": ("examples,coverage,fuzzing,stateful", "15"),
    "chalice": ("examples,coverage,fuzzing", "8"),
}


def _spec(client: Client) -> dict[str, object]:
    response = get(client, "/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    spec = json.loads(response.body)
    assert isinstance(spec, dict)
    return spec


def test_the_description_is_valid_openapi_3_1_of_every_route(client: Client) -> None:
    spec = _spec(client)
    validate(spec)  # raises on anything OpenAPI 3.1 does not allow
    assert spec["openapi"] == "3.1.0"
    paths = spec["paths"]
    assert isinstance(paths, dict)
    described = {(p, m.upper()) for p, ops in paths.items() for m in ops}
    served = {(p, m) for p, methods in routes.ROUTES.items() for m in methods}
    assert described == served


def test_it_states_headers_errors_and_the_configured_filters(client: Client) -> None:
    spec = json.dumps(_spec(client))
    for header in (
        "X-Recommendation-Source",
        "Cache-Control",
        "X-Fallback-Reason",
        "Retry-After",
        "WWW-Authenticate",
        "Content-Security-Policy",
    ):
        assert f'"{header}"' in spec
    described = json.loads(spec)
    recs = described["paths"]["/recommendations"]["get"]
    assert set(recs["responses"]) == {"200", "400", "401"}
    filters = next(p for p in recs["parameters"] if p["name"] == "filter")
    assert filters["schema"]["enum"] == list(load_config(Settings().config).filters)
    error = described["components"]["schemas"]["Error"]
    codes = set(error["properties"]["error"]["enum"])
    # Every code the app can answer is in the envelope's enum.
    written = set()
    for source in Path("chalicelib").rglob("*.py"):
        text = source.read_text()
        written |= set(re.findall(r'(?:ApiError|error_reply)\(\s*\d+,\s*"([a-z_]+)"', text))
        written |= set(re.findall(r'^\s+code = "([a-z_]+)"', text, re.MULTILINE))
    assert written <= codes, written - codes


def test_the_description_needs_the_key(client: Client) -> None:
    assert_error(client.http.get("/openapi.json"), 401, "unauthorized")
    assert client.http.get("/openapi.json", headers=AUTH).status_code == 200


@pytest.mark.parametrize("server", list(RUNS))
def test_schemathesis_over_every_route(data_dir: Path, tmp_path: Path, server: str) -> None:
    args = ["--workers", "1"] if server == "production" else ["--server", "chalice"]
    config = tmp_path / "schemathesis.toml"
    # Which query parameters a filter needs (its $PLACEHOLDERs) and on which route it works
    # (CurrentItem: related items only) depend on the filter named, which OpenAPI cannot state:
    # such a schema-valid request gets the described 400 (missing_filter_value, invalid_filter),
    # whose body the response-schema check still checks against the error envelope.
    accepted = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
    checks = f"[checks.positive_data_acceptance]\nexpected-statuses = {json.dumps(accepted)}\n"
    config.write_text(checks)
    if server == "chalice":
        # `chalice local`'s HTTP server (http.server) answers TRACE and QUERY itself with 501,
        # before the app sees them (API Gateway passes neither to a Lambda): the other methods
        # a route does not take must still get the app's 405.
        methods = ["get", "put", "post", "delete", "options", "patch"]
        config.write_text(
            f"{checks}\n[phases.coverage]\nunexpected-methods = {json.dumps(methods)}\n"
        )
    live = LiveServer(data_dir, *args)
    try:
        answer = live.request("GET", "/openapi.json", headers={"x-api-key": DEV_KEY})
        assert answer.status == 200
        # From a file, so that /openapi.json is one of the routes tested too.
        (tmp_path / "openapi.json").write_bytes(answer.body)
        command = [
            str(ST),
            "--config-file",
            str(config),
            "run",
            str(tmp_path / "openapi.json"),
            "--url",
            f"http://127.0.0.1:{live.port}",
            "-H",
            f"x-api-key: {DEV_KEY}",
            "--checks",
            "all",
            "--exclude-checks",
            "negative_data_rejection",
            "--phases",
            RUNS[server][0],
            "--max-examples",
            RUNS[server][1],
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--workers",
            "1",
            "--max-response-time",
            "5",
        ]
        run = subprocess.run(  # in tmp_path: schemathesis keeps its crash cache in the cwd
            command, capture_output=True, text=True, timeout=400, check=False, cwd=tmp_path
        )
    finally:
        live.stop()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"schemathesis-{server}.txt").write_text(run.stdout + run.stderr)
    summary = run.stdout[run.stdout.find("SUMMARY") :]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    operations = sum(len(methods) for methods in routes.ROUTES.values())
    assert f"Selected: {operations}/{operations}" in summary, summary
    assert f"Tested: {operations}" in summary, summary
    assert "failure" not in summary.lower().replace("0 failures", ""), summary
