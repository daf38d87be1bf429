"""`make run`'s time to the first answer: `python -m chalicelib serve --bootstrap` on an empty
store (import the bundled sample, train, start the server) until `GET /recommendations` answers.

    .venv/bin/python bench/first_answer.py [--runs 3] [--sample retail-demo-store]

Each run gets a fresh data directory and a free port; the server is stopped after its answer.
Prints each run's seconds, their median and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "dev-local-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_answer(sample: str | None, timeout: float = 300) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "RECS_DATA_DIR": data_dir}
        env.pop("RECS_API_KEYS", None)
        command = [sys.executable, "-m", "chalicelib", "serve", "--bootstrap", "--port", str(port)]
        command += ["--sample", sample] if sample else []
        started = time.perf_counter()
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/recommendations?user_id=1&num_results=5"
        request = urllib.request.Request(url, headers={"x-api-key": KEY})
        try:
            while time.perf_counter() - started < timeout:
                if server.poll() is not None:
                    raise SystemExit(f"the server stopped with exit code {server.returncode}")
                try:
                    with urllib.request.urlopen(request, timeout=2) as response:
                        if response.status == 200:
                            return time.perf_counter() - started
                except OSError:
                    time.sleep(0.1)
            raise SystemExit(f"no answer within {timeout:.0f} s")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", help="a bundled sample (default: serve's own default)")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f}")
    times = []
    for run in range(args.runs):
        seconds = first_answer(args.sample)
        times.append(seconds)
        print(f"run {run + 1}: first answer after {seconds:.1f} s", flush=True)
    print(f"median {statistics.median(times):.1f} s over {len(times)} runs")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
