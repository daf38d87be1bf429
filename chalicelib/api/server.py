"""The production HTTP server of the `local` provider: uvicorn over an ASGI adapter of `routes`.

`chalice local` is a development server: one process, a thread per connection, every request
sharing one GIL. A shop that serves Braze from the `local` provider needs every core and a
supervisor that replaces a crashed worker: uvicorn's worker processes (spawned, each with its own
runtime, store connection and loaded models), its supervisor restarting a worker that dies or
hangs, keep-alive connections, and httptools/uvloop where installed. Why uvicorn rather than
gunicorn's threaded workers: per request, gunicorn's Python HTTP handling and thread hand-off cost
about 0.4 ms of CPU against 0.1 ms here (measured on a 404). Two changes to how uvicorn is run,
each measured with bench/load.py: every response leaves in one write (`OneWriteProtocol`), and a
keep-alive connection is closed after `REQUESTS_PER_CONNECTION` requests so that connections
spread over the workers again.

Requests run on the worker's event loop, writes included: a request is CPU work (the GIL allows
nothing else), so one at a time per worker is what the cores allow anyway, and a write's SQLite
transaction is short (WAL: readers never wait for it). Handing writes to a thread measured worse:
their median went from 10 to 30 ms at 16 clients, every hand-off waiting on the GIL's switch
interval. The routes and replies are those of `chalicelib.api.routes`, the same functions the
Lambda runs.

uvicorn is a development requirement, like the engine: the Lambda never imports this module.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chalicelib.api import routes
from chalicelib.api.web import Reply, Request
from chalicelib.seam import runtime

log = logging.getLogger("recs.server")
# A keep-alive connection is closed after this many requests (nginx's `keepalive_requests`), so
# that connections spread over the workers again. The workers share one listening socket and
# whichever is in `epoll_wait` first takes a new connection: at a burst of connections one worker
# often takes them all and keeps them for their life (bench/load.py: 16 of 16 connections on one
# worker in 1 run of 3, 14 of 16 in another, one core idle). A closed connection reconnects to
# the worker that is idle most often, the one with the fewest connections to serve.
REQUESTS_PER_CONNECTION = 100
_served: dict[object, int] = {}  # requests so far per connection, by client address
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
APP = "chalicelib.api.server:application"
PROTOCOL = "chalicelib.api.server:OneWriteProtocol"


async def _body(receive: Receive, limit: int) -> bytes:
    """At most one byte more than a route accepts: a larger body gets its 413 without being
    held in memory whole."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if size <= limit:
            chunks.append(chunk[: limit + 1 - size])
            size += len(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _request(scope: dict[str, Any], body: bytes) -> Request:
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    query = parse_qs(scope["query_string"].decode("utf-8", "replace"), keep_blank_values=True)
    return Request(method=scope["method"], headers=headers, query=query, body=body)


async def _send(send: Send, reply: Reply, close: bool = False) -> None:
    body = reply.body.encode("utf-8")
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    headers.append((b"content-length", str(len(body)).encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _warm_up()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            _flush()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _warm_up() -> None:
    """Build the worker's runtime, open the store and load every model before the worker takes
    its first request. A worker's environment never changes: its runtime is pinned."""
    try:
        runtime.pin()
        routes.health()
    except Exception:  # the worker serves anyway; /health and the log say what is wrong
        log.exception("warm-up failed")
    # What start-up built (models, catalogue, runtime) lives as long as the worker: frozen, a
    # full collection while serving walks only what requests made since.
    gc.collect()
    gc.freeze()


def _flush() -> None:
    """What the worker wrote behind its answers reaches the store before it exits."""
    try:
        runtime.current().loop.flush()
    except Exception:
        log.exception("served lists not written at shutdown")


async def application(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    limit = runtime.current().settings.max_body_bytes
    request = _request(scope, await _body(receive, limit))
    await _send(send, routes.route(scope.get("path") or "/", request), _last_on_connection(scope))


def _last_on_connection(scope: dict[str, Any]) -> bool:
    """Whether this request is the connection's last (see REQUESTS_PER_CONNECTION). A client
    that leaves early leaves its count behind: the table is emptied when it grows large."""
    client = scope.get("client")
    if client is None:
        return False
    count = _served.get(client, 0) + 1
    if count < REQUESTS_PER_CONNECTION:
        if len(_served) >= 4096:
            _served.clear()
        _served[client] = count
        return False
    _served.pop(client, None)
    return True


class OneWriteTransport:
    """A connection's transport whose writes of one event-loop step leave in one `send`.

    uvicorn writes a response's head when the app sends `http.response.start` and its body on
    `http.response.body`: two sends, so two TCP segments on the wire and two wake-ups of the
    client for one response. On loopback, where the kernel delivers a segment inside the
    sender's `send`, the head's write alone took 21% of a worker's CPU in bench/load.py
    (py-spy). The app sends both without yielding to the loop, so holding writes until the
    end of the loop step joins them; the order of writes and a close after them are kept."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading, ...
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, each response in one write (see `OneWriteTransport`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWriteTransport(transport, self.loop))  # type: ignore[arg-type]


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus the app's `recs.*` loggers (faults, fallbacks) at INFO: uvicorn
    applies it in every worker process."""
    from uvicorn.config import LOGGING_CONFIG  # noqa: PLC0415

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["recs"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def run(host: str, port: int, workers: int, access_log: bool = False) -> None:
    import uvicorn  # noqa: PLC0415 - a development requirement

    if workers > 1:
        log.info("%d workers; each loads the models", workers)
    uvicorn.run(
        APP,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
        log_config=_log_config(),
        lifespan="on",
        http=PROTOCOL,
        timeout_keep_alive=5,
        server_header=False,
        proxy_headers=False,  # the app reads no client address: skip the middleware (~3% CPU)
    )
