"""Cold-start benchmark: a fresh interpreter imports `app` and builds the runtime, as a new Lambda
container does on its first request, on the `personalize` provider; the `local` provider (numpy,
scipy, the engine) measured in the same run is the peer. Also the fallback budget: how long a
request takes when Personalize never answers (a local socket that accepts and stays silent).

    .venv/bin/python bench/cold_start.py [--runs 15]

SPEC §7 target: importing `app` on the `personalize` provider < 300 ms, no numpy.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CODE = (
    "import time, sys\nt = time.perf_counter()\nimport app\n"
    "from chalicelib import runtime\nruntime.current()\n"
    "print(time.perf_counter() - t, 'numpy' in sys.modules)"
)


def cold(provider: str, runs: int) -> tuple[list[float], bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update({"RECS_PROVIDER": provider, "AWS_DEFAULT_REGION": "us-east-1"})
    times, numpy = [], False
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CODE],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds, loaded = out.stdout.split()
        times.append(float(seconds) * 1000)
        numpy = numpy or loaded == "True"
    return times, numpy


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
    from chalicelib import aws, runtime

    provider = runtime.current().provider
    aws.client("personalize-runtime")  # client creation is a cold-start cost, measured above
    started = time.perf_counter()
    recs = provider.recommend("u1", 10, None)
    elapsed = time.perf_counter() - started
    assert recs.source == "fallback"
    server.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    ours, ours_numpy = cold("personalize", args.runs)
    peer, peer_numpy = cold("local", args.runs)
    print(f"cold import of app + runtime, median of {args.runs} fresh interpreters:")
    print(f"  personalize provider  {statistics.median(ours):6.0f} ms  numpy loaded: {ours_numpy}")
    print(f"  local provider (peer) {statistics.median(peer):6.0f} ms  numpy loaded: {peer_numpy}")
    print(f"  ratio                 {statistics.median(peer) / statistics.median(ours):6.2f}x")
    budget = float(os.environ.get("RECS_PERSONALIZE_BUDGET_MS", "1200")) / 1000
    print(f"hung Personalize -> fallback in {hung_personalize():.2f} s (budget {budget:.2f} s)")


if __name__ == "__main__":
    main()
