"""Cold-start benchmark on the `personalize` provider, in the zip Lambda would run.

    .venv/bin/python bench/cold_start.py [--runs 15]

The `dev` stage is packaged offline (`deploy/offline.py`), unzipped, and each fresh interpreter
does what a new Lambda container does: import `app` (the init phase), then answer one
`GET /recommendations` through Chalice's handler from a local stand-in for Personalize that replies
at once with 25 items and their metadata (the first invocation: routing, settings, config, models,
boto3 and its client, decoration). Two zips, measured in the same run:

- ours: `deploy/chalice_compiled.py` (Chalice's package plus hash-checked bytecode);
- peer: the zip plain `chalice deploy` builds, which Lambda compiles on every cold start.

Also the fallback budget: a request when Personalize accepts the connection and never answers.
SPEC §7: importing `app` on the `personalize` provider < 300 ms, no numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy import offline  # noqa: E402
from deploy.chalice_compiled import add_bytecode  # noqa: E402

KEY = "bench-key"
CONTAINER = f"""
import json, sys, time
started = time.perf_counter()
import app
imported = time.perf_counter()
event = {{
    "resource": "/recommendations", "path": "/recommendations", "httpMethod": "GET",
    "headers": {{"x-api-key": "{KEY}"}}, "multiValueHeaders": {{"x-api-key": ["{KEY}"]}},
    "queryStringParameters": {{"user_id": "u1"}},
    "multiValueQueryStringParameters": {{"user_id": ["u1"]}},
    "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
    "requestContext": {{"resourcePath": "/recommendations", "httpMethod": "GET", "stage": "api"}},
}}
response = app.app(event, None)
answered = time.perf_counter()
items = json.loads(response["body"])
print(json.dumps({{
    "import_ms": (imported - started) * 1000,
    "first_ms": (answered - started) * 1000,
    "status": response["statusCode"],
    "source": response["headers"].get("X-Recommendation-Source"),
    "items": len(items),
    "numpy": "numpy" in sys.modules,
}}))
"""


class FakePersonalize(BaseHTTPRequestHandler):
    """GetRecommendations answered at once: 25 items with the metadata columns asked for."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        items = [
            {
                "itemId": f"i{n}",
                "metadata": {"NAME": f"Item {n}", "PRICE": "9.5", "URL": "", "IMAGE": ""},
            }
            for n in range(25)
        ]
        body = json.dumps({"itemList": items, "recommendationId": "RID-bench"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/x-amz-json-1.1")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def stage_environment(endpoint: str) -> dict[str, str]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECS_", "AWS_", "PYTHON"))}
    env.update(config["environment_variables"])
    env.update(config["stages"]["dev"]["environment_variables"])
    env.update(
        {
            "RECS_API_KEYS": KEY,
            "RECS_CAMPAIGN_ARN": "arn:aws:personalize:us-east-1:123456789012:campaign/recs",
            "RECS_DECORATION": "metadata",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": endpoint,
            "PYTHONDONTWRITEBYTECODE": "1",  # /var/task is read-only
        }
    )
    return env


def cold(task: Path, env: dict[str, str], runs: int) -> list[dict[str, float]]:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CONTAINER],
            cwd=task,
            env={**env, "PYTHONPATH": str(task)},
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["status"] == 200 and result["source"] == "personalized", result
        assert result["items"] == 25 and not result["numpy"], result
        results.append(result)
    return results


def unzip(zip_path: Path, into: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(into)
    return into


def hung_personalize() -> float:
    """Seconds for `recommend` when Personalize accepts the connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    os.environ.update(
        {
            "RECS_PROVIDER": "personalize",
            "RECS_CAMPAIGN_ARN": "arn:aws:personalize:us-east-1:123456789012:campaign/recs",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": f"http://127.0.0.1:{server.getsockname()[1]}",
        }
    )
    from chalicelib import aws
    from chalicelib.seam import fallback, runtime

    serving = runtime.current().serving
    aws.client("personalize-runtime")  # client creation is a cold-start cost, measured above
    started = time.perf_counter()
    recs = fallback.recommend(serving, "u1", 10, None)
    elapsed = time.perf_counter() - started
    assert recs.source == "fallback"
    server.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakePersonalize)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    env = stage_environment(f"http://127.0.0.1:{fake.server_address[1]}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("packaging the dev stage offline ...", file=sys.stderr)
        plain_zip = offline.package(work / "out", "dev") / "deployment.zip"
        compiled_zip = work / "compiled.zip"
        shutil.copy2(plain_zip, compiled_zip)
        modules = add_bytecode(compiled_zip)
        plain = unzip(plain_zip, work / "plain")
        compiled = unzip(compiled_zip, work / "compiled")
        # Interleaved, so both zips see the same machine load.
        ours: list[dict[str, float]] = []
        peer: list[dict[str, float]] = []
        for _ in range(args.runs):
            ours += cold(compiled, env, 1)
            peer += cold(plain, env, 1)
    fake.shutdown()

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"cold Lambda container on the personalize provider, median of {args.runs} each:")
    print(f"  {'':38} {'import app':>11} {'first answer':>13}")
    for label, rows in (
        (f"ours: with bytecode ({modules} modules)", ours),
        ("peer: plain chalice zip, no bytecode", peer),
    ):
        print(
            f"  {label:38} {median(rows, 'import_ms'):8.0f} ms {median(rows, 'first_ms'):10.0f} ms"
        )
    print(
        f"  first answer, peer / ours: {median(peer, 'first_ms') / median(ours, 'first_ms'):.2f}x"
        "   numpy loaded: False (checked in every run)"
    )
    budget = float(os.environ.get("RECS_PERSONALIZE_BUDGET_MS", "1200")) / 1000
    print(f"hung Personalize -> fallback in {hung_personalize():.2f} s (budget {budget:.2f} s)")


if __name__ == "__main__":
    main()
