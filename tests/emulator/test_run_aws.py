"""`make run-aws` (`python -m chalicelib run-aws`) as a user runs it, on a small generated sample:
it comes up personalized on the `personalize` provider, a `POST /events` travels HTTP → SQS →
`ingest_sqs` → PutEvents and changes that user's next answer, and one Ctrl-C stops everything
it started."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

from chalicelib.cli.run_aws import REGION, STAGE
from chalicelib.cli.serve import DEV_KEY
from chalicelib.settings import PROJECT_ROOT
from tests import currents_support as cs
from tests.emulator_support import free_port, shop_csv


def sample(into: Path) -> Path:
    into.mkdir()
    kinds = ["garden", "kitchen", "toys", "books"]
    items = "ITEM_ID,NAME,PRICE\n" + "".join(
        f"i{n},{kinds[n // 10]} {n},{n + 0.5}\n" for n in range(40)
    )
    users = "USER_ID,COUNTRY\n" + "".join(f"u{n},France\n" for n in range(80))
    for name, text in (("interactions", shop_csv()), ("items", items), ("users", users)):
        with gzip.open(into / f"{name}.csv.gz", "wt", encoding="utf-8") as out:
            out.write(text)
    return into


def call(url: str, body: dict | None = None) -> tuple[int, dict[str, str], object]:
    headers = {"x-api-key": DEV_KEY, "content-type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as reply:
        headers = {k.lower(): v for k, v in reply.headers.items()}
        return reply.status, headers, json.loads(reply.read())


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_run_aws_serves_personalized_answers_that_follow_events_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    ports = {"--port": free_port(), "--emulator-port": free_port(), "--moto-port": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECS_", "AWS_"))}
    command = [sys.executable, "-m", "chalicelib", "run-aws", "--data-dir", str(tmp_path / "aws")]
    command += ["--sample", str(sample(tmp_path / "sample"))]
    command += [str(x) for pair in ports.items() for x in pair]
    log = (tmp_path / "run-aws.log").open("w")
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{ports['--port']}"
    try:
        deadline = time.monotonic() + 300
        while not listening(ports["--port"]):
            assert process.poll() is None, (tmp_path / "run-aws.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "run-aws did not come up"
            time.sleep(0.5)
        status, headers, before = call(f"{base}/recommendations?user_id=newcomer&num_results=5")
        assert status == 200
        _, headers, known = call(f"{base}/recommendations?user_id=u1&num_results=10")
        assert headers["x-recommendation-source"] == "personalized"
        assert sum(10 <= int(item["id"][1:]) < 20 for item in known) >= 7
        events = [{"event_type": "view", "item_id": f"i{30 + n}"} for n in range(5)]
        status, _, accepted = call(
            f"{base}/events", {"user_id": "newcomer", "session_id": "s1", "events": events}
        )
        assert (status, accepted) == (202, {"accepted": 5})
        deadline = time.monotonic() + 30
        while True:
            _, _, after = call(f"{base}/recommendations?user_id=newcomer&num_results=5")
            if after != before or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert all(30 <= int(item["id"][1:]) < 40 for item in after)
        _kept_and_braze_currents_played(tmp_path, ports["--moto-port"])
        output = (tmp_path / "run-aws.log").read_text()
        assert "first personalized answer for user u0" in output
        assert f"curl -H 'x-api-key: {DEV_KEY}' '{base}/recommendations?user_id=u0'" in output
        first_item = shop_csv().splitlines()[1].split(",")[1]  # the event line posts the
        assert f'"item_id": "{first_item}"' in output  # sample's own first item
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        code = process.wait(30)
        log.close()
    assert code == 0
    assert not any(listening(port) for port in ports.values())


def _kept_and_braze_currents_played(tmp_path: Path, moto_port: int) -> None:
    """What was served is kept in the stage's served table (moto's DynamoDB), and a Braze
    Currents file dropped under `currents/` is played into `ingest_currents`: its record ends
    claimed `done` once PutEvents took it."""
    moto = {"endpoint_url": f"http://127.0.0.1:{moto_port}", "region_name": REGION}
    moto |= {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    dynamodb = boto3.client("dynamodb", **moto)
    table = STAGE["RECS_SERVED_TABLE"]
    kept = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :user",
        ExpressionAttributeValues={":user": {"S": "U#u1"}},
    )["Items"]
    assert kept and all(item["sk"]["S"].startswith("S#") for item in kept)
    record = cs.purchase(7, "u1", "i31", 2.5, int(time.time()))
    path = cs.write(tmp_path / "currents", cs.PURCHASE, [record])
    boto3.client("s3", **moto).upload_file(
        str(path), STAGE["RECS_IMPORT_BUCKET"], cs.key(cs.PURCHASE)
    )

    def done() -> bool:
        items = dynamodb.scan(TableName=table)["Items"]
        return any(item.get("status", {}).get("S") == "done" for item in items)

    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, "ingest_currents did not take the Currents file"
        time.sleep(0.5)
