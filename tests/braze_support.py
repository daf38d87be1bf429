"""A fake Braze `/users/track` on 127.0.0.1 for the push tests (`braze-push`, `segments`):
scripted replies by call number, every request and accepted user recorded."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

KEY = "braze-secret-key-0123456789"


@dataclass
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeBraze:
    """Scripted replies by call number (1-based); everything else is a success. Records every
    request and, for successes, every user it accepted."""

    url: str = ""
    clock: FakeClock | None = None
    script: dict[int, tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def handle(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict, dict]:
        self.calls.append(
            {"auth": headers.get("Authorization"), "body": body, "at": self.clock and self.clock()}
        )
        status, extra, reply = self.script.get(len(self.calls), (201, {}, {}))
        if 200 <= status < 300:
            refused = {e["index"] for e in reply.get("errors", [])}
            for n, obj in enumerate(body["attributes"]):
                if n not in refused:
                    self.accepted.append(obj["external_id"])
                    self.values[obj["external_id"]] = obj
            reply = {"message": "success", "attributes_processed": len(body["attributes"]), **reply}
        return status, extra, reply or {"message": "error"}


@pytest.fixture
def fake_braze() -> Iterator[FakeBraze]:
    fake = FakeBraze()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert self.path == "/users/track"
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, extra, reply = fake.handle(dict(self.headers), body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
