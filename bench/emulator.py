"""The emulator's protocol overhead: GetRecommendations through an unmodified boto3 client
against `python -m chalicelib emulate` (its own process, as a user runs it), beside the same
answer computed in process by the engine on the same solution version, measured in the same run.

    .venv/bin/python bench/emulator.py [--requests 2000] [--users 2000] [--items 1000]

A generated shop (users with tastes over the items, 30 events each) goes through the whole
workflow first: S3 (a moto server in this process) → dataset import job → solution version →
campaign. `make run-aws` prints its own time to the first personalized answer.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator_support import (  # noqa: E402 - after the path is set
    INTERACTIONS_SCHEMA,
    USER_PERSONALIZATION,
    free_port,
    wait,
)


def shop(users: int, items: int, per_user: int = 30, seed: int = 7) -> str:
    rnd = random.Random(seed)
    tastes = 20
    lines = ["USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP"]
    for u in range(users):
        taste = u % tastes
        for k in range(per_user):
            if rnd.random() < 0.7:
                item = (taste * items // tastes + rnd.randrange(items // tastes)) % items
            else:
                item = int(rnd.paretovariate(1.2)) % items
            lines.append(f"u{u},i{item},view,{1_700_000_000 + u * 100 + k}")
    return "\n".join(lines) + "\n"


def figures(samples: list[float]) -> str:
    p50, p99 = np.percentile(samples, [50, 99])
    return f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  mean {np.mean(samples):6.2f} ms"


def timed(call: Callable[[str], Any], users: list[str]) -> list[float]:
    """Milliseconds of each call, after 50 warm-up calls."""
    for user in users[:50]:
        call(user)
    samples = []
    for user in users:
        started = time.perf_counter()
        call(user)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def build(c: Any, s3: Any, args: argparse.Namespace) -> tuple[str, str, str]:
    """The generated shop through the whole workflow: (dataset group, version, campaign)."""
    s3.create_bucket(Bucket="bench-shop")
    s3.put_object(Bucket="bench-shop", Key="i.csv", Body=shop(args.users, args.items).encode())
    group = c.create_dataset_group(name="bench")["datasetGroupArn"]
    wait(lambda: c.describe_dataset_group(datasetGroupArn=group)["datasetGroup"])
    schema = c.create_schema(name="bench", schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = c.create_dataset(
        name="bench", schemaArn=schema, datasetGroupArn=group, datasetType="Interactions"
    )["datasetArn"]
    wait(lambda: c.describe_dataset(datasetArn=dataset)["dataset"])
    job = c.create_dataset_import_job(
        jobName="bench",
        datasetArn=dataset,
        dataSource={"dataLocation": "s3://bench-shop/i.csv"},
        roleArn="arn:aws:iam::123456789012:role/bench",
    )["datasetImportJobArn"]
    wait(lambda: c.describe_dataset_import_job(datasetImportJobArn=job)["datasetImportJob"])
    solution = c.create_solution(
        name="bench", datasetGroupArn=group, recipeArn=USER_PERSONALIZATION
    )["solutionArn"]
    wait(lambda: c.describe_solution(solutionArn=solution)["solution"])
    version = c.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    wait(lambda: c.describe_solution_version(solutionVersionArn=version)["solutionVersion"])
    campaign = c.create_campaign(name="bench", solutionVersionArn=version)["campaignArn"]
    wait(lambda: c.describe_campaign(campaignArn=campaign)["campaign"])

    return group, version, campaign


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    moto_port, port = free_port(), free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request lines
    moto.start()
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{moto_port}"
    data_dir = Path(tempfile.mkdtemp(prefix="bench-emulator-"))
    server = subprocess.Popen(
        [sys.executable, "-m", "chalicelib", "emulate", "--port", str(port), "--data-dir",
         str(data_dir), "--step", "0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        c = boto3.client("personalize", endpoint_url=url)
        rt = boto3.client("personalize-runtime", endpoint_url=url)
        for _ in range(200):
            try:
                c.list_dataset_groups()
                break
            except Exception:  # not listening yet
                time.sleep(0.05)
        group, version, campaign = build(c, boto3.client("s3"), args)
        users = [f"u{random.Random(n).randrange(args.users)}" for n in range(args.requests)]
        wire = timed(
            lambda user: rt.get_recommendations(campaignArn=campaign, userId=user, numResults=25),
            users,
        )
        from chalicelib.emulator.groups import Groups
        from chalicelib.emulator.registry import Registry

        record = Registry(data_dir).get("SolutionVersion", version)
        group_data = Groups(data_dir).of(group)
        served = group_data.served(record)
        engine = timed(lambda user: group_data.recommend(served, user, 25, None), users)
    finally:
        server.terminate()
        server.wait(10)
        moto.stop()
    load = os.getloadavg()[0]
    print(f"GetRecommendations, top 25, {args.items} items, {args.requests} requests "
          f"(load average {load:.2f} on {os.cpu_count()} cores)")  # fmt: skip
    print(f"  boto3 → emulator (HTTP, JSON, model check): {figures(wire)}")
    print(f"  engine in process (same version, history):  {figures(engine)}")
    print(f"  protocol overhead: {np.median(wire) / np.median(engine):.1f}x the engine's median")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
