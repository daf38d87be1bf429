"""Servers started as a user starts them (`python -m chalicelib serve ...`) on loopback, for tests
that need a real process: the production server's behaviour, kill -9, the keys it serves with."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chalicelib.settings import PROJECT_ROOT

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


class LiveServer:
    def __init__(self, data_dir: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        command = [sys.executable, "-m", "chalicelib", "serve", "--port", str(self.port), *args]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
        environ |= {"RECS_DATA_DIR": str(data_dir), **(env or {})}
        self.log = (data_dir.parent / f"server-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=environ, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if self.request("GET", "/health").status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}  # case-insensitive
            return Answer(response.status, headers, response.read())
        finally:
            conn.close()

    def workers(self) -> list[int]:
        """Pids of the processes the server started (uvicorn's workers and helpers)."""
        found, pending = [], [self.process.pid]
        while pending:
            pid = pending.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found += [int(c) for c in children]
            pending += [int(c) for c in children]
        return found

    def kill_all(self) -> None:
        """kill -9 of the whole server: its supervisor and every worker at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
