"""The emulator's HTTP front: one server for Personalize's three APIs, speaking their wire
protocols so that boto3 needs nothing but an endpoint URL.

- control plane (`personalize`): AWS JSON 1.1, `POST /` with `X-Amz-Target:
  AmazonPersonalize.<Operation>`; errors as `{"__type": CODE, "message": ...}`;
- `personalize-runtime` (`POST /recommendations`, `/personalize-ranking`) and
  `personalize-events` (`POST /events`, `/users`, `/items`): rest-json; errors in the
  `x-amzn-ErrorType` header with a `{"message"}` body, at the status the model gives them.

Every request body is checked against the operation's input shape in botocore's service model
(`model`: maxima, patterns and enums included) before it reaches a handler; a violation is the
service's 400 ValidationException. Signatures are not verified (any credentials work).

uvicorn serves it, as it does the local provider (`chalicelib.api.server`); `start` runs it on a
thread (tests, `make run-aws`), `run` in the foreground (`python -m chalicelib emulate`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from chalicelib.emulator.control import REQUEST_REGION, Control
from chalicelib.emulator.errors import ServiceError
from chalicelib.emulator.groups import Groups
from chalicelib.emulator.jobs import Jobs
from chalicelib.emulator.model import check, check_reply
from chalicelib.emulator.registry import Registry
from chalicelib.emulator.runtime import Runtime
from chalicelib.emulator.workflow import Workflow
from chalicelib.providers.local.database import StoreUnavailable

log = logging.getLogger("recs.emulator")
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
TARGET = "AmazonPersonalize."
REST = {
    "/recommendations": ("personalize-runtime", "GetRecommendations"),
    "/personalize-ranking": ("personalize-runtime", "GetPersonalizedRanking"),
    "/events": ("personalize-events", "PutEvents"),
    "/users": ("personalize-events", "PutUsers"),
    "/items": ("personalize-events", "PutItems"),
}
MAX_BODY = 10 * 1024 * 1024
DEFAULT_ACCOUNT = "123456789012"  # moto's default account: ARNs match across the two emulators


class Emulator:
    """The registry, the dataset groups' data, the job workers and the three APIs' handlers."""

    def __init__(
        self,
        data_dir: Path,
        region: str | None = None,
        account: str = DEFAULT_ACCOUNT,
        step_seconds: float = 0.05,
        check_replies: bool = False,
    ) -> None:
        # Tests check every reply against the output shape too: a reply the service could not
        # give is a 500 there, not a quiet difference.
        self.check_replies = check_replies
        region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.registry = Registry(data_dir)
        self.groups = Groups(data_dir)
        self.jobs = Jobs(self.registry, self.groups, step_seconds)
        self.control = Control(self.registry, self.groups, self.jobs, region, account)
        Workflow(self.control)
        self.runtime = Runtime(self.registry, self.groups)
        self.jobs.resume()

    def call(self, service: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        problems = check(service, operation, body)
        if problems:
            count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''}"
            raise ServiceError("ValidationException", f"{count} detected: {'; '.join(problems)}")
        if service == "personalize":
            reply = self.control.handle(operation, body)
        else:
            reply = self.runtime.handlers[operation](body)
        if self.check_replies:
            wrong = check_reply(service, operation, reply)
            if wrong:
                raise AssertionError("; ".join(wrong))
        return reply

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                done = message["type"] + ".complete"
                await send({"type": done})
                if message["type"] == "lifespan.shutdown":
                    self.jobs.shutdown()
                    return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY or not message.get("more_body"):
                break
        # Off the event loop: a handler may wait on a store an import is writing, and the
        # server keeps answering Describe polls meanwhile.
        status, reply_headers, payload = await asyncio.to_thread(self.answer, scope, headers, body)
        data = json.dumps(payload, separators=(",", ":")).encode()
        reply_headers.append(("content-length", str(len(data))))
        raw = [(k.encode(), v.encode()) for k, v in reply_headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": data})

    def answer(
        self, scope: dict[str, Any], headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], dict[str, Any]]:
        # `Credential=KEY/DATE/REGION/personalize/aws4_request`: new ARNs carry that region.
        scope_parts = headers.get("authorization", "").split("Credential=", 1)[-1].split("/")
        REQUEST_REGION.set(scope_parts[2] if len(scope_parts) > 3 else None)
        target = headers.get("x-amz-target", "")
        path = scope.get("path") or "/"
        rest = path in REST
        if scope["method"] == "POST" and path == "/" and target.startswith(TARGET):
            service, operation = "personalize", target[len(TARGET) :]
            kind = "application/x-amz-json-1.1"
        elif scope["method"] == "POST" and rest:
            (service, operation), kind = REST[path], "application/json"
        else:
            return _error(
                ServiceError("UnknownOperationException", f"No operation at {path}"), rest
            )
        try:
            if len(body) > MAX_BODY:
                raise ServiceError("SerializationException", "The request body is too large.")
            try:
                parsed = json.loads(body or b"{}")
            except ValueError:
                raise ServiceError("SerializationException", "The body is not JSON.") from None
            if not isinstance(parsed, dict):
                raise ServiceError("SerializationException", "The body is not a JSON object.")
            result = self.call(service, operation, parsed)
        except ServiceError as exc:
            return _error(exc, rest)
        except StoreUnavailable as exc:
            return _error(ServiceError("ServiceUnavailableException", str(exc)), rest, 503)
        except AssertionError as exc:  # a reply the service could not give (check_replies)
            log.exception("%s %s: reply check", service, operation)
            return _error(ServiceError("InternalFailure", f"reply check: {exc}"), rest, 500)
        except Exception:
            log.exception("%s %s failed", service, operation)
            error = ServiceError("InternalFailure", "The emulator failed; see its log.")
            return _error(error, rest, 500)
        return 200, [("content-type", kind)], result


def _error(
    exc: ServiceError, rest: bool, status: int | None = None
) -> tuple[int, list[tuple[str, str]], dict[str, Any]]:
    if rest:
        headers = [("content-type", "application/json"), ("x-amzn-errortype", exc.code)]
        return status or exc.status(True), headers, {"message": exc.message}
    headers = [("content-type", "application/x-amz-json-1.1")]
    return status or 400, headers, {"__type": exc.code, "message": exc.message}


class Running:
    """An emulator served by uvicorn on a thread; `stop()` ends it."""

    def __init__(self, emulator: Emulator, host: str, port: int) -> None:
        import uvicorn  # noqa: PLC0415 - a development requirement

        config = uvicorn.Config(
            emulator, host=host, port=port, log_level="warning", lifespan="on", access_log=False
        )
        self.emulator = emulator
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="emulator", daemon=True)
        self.url = f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> Running:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start(data_dir: Path, host: str = "127.0.0.1", port: int = 8001, **options: Any) -> Running:
    return Running(Emulator(data_dir, **options), host, port).start()


def run(data_dir: Path, host: str, port: int, **options: Any) -> None:
    import uvicorn  # noqa: PLC0415

    emulator = Emulator(data_dir, **options)
    log.info("Personalize emulator on http://%s:%d (data in %s)", host, port, data_dir)
    uvicorn.run(emulator, host=host, port=port, log_level="info", lifespan="on")
