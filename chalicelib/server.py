"""The production HTTP server of the `local` provider: gunicorn over a WSGI adapter of `serving`.

`chalice local` is a development server (one process, a thread per connection, the GIL shared by
every request). A shop that serves Braze from the `local` provider needs a server that uses every
core and survives a crashed worker: gunicorn (pre-fork, a master that restarts workers) with its
`gthread` workers (keep-alive connections parked off the threads). Each worker builds its own
runtime after the fork (SQLite connections must not cross a fork) and loads the models before it
takes a request. The routes and replies are `serving`'s, the same functions the Lambda runs.

gunicorn is a development requirement, like the engine: the Lambda never imports this module.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from chalicelib import runtime, serving
from chalicelib.web import Request

log = logging.getLogger("recs.server")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _body(environ: dict[str, Any]) -> bytes:
    """At most one byte more than the route accepts: a larger body gets its 413 without being
    held in memory whole."""
    limit = runtime.current().settings.max_body_bytes + 1
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    chunks, size = [], 0
    while size < limit:
        chunk = stream.read(min(65_536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _text(value: str) -> str:
    # PEP 3333 hands the path and query over as latin-1 decoded bytes: undo that, as UTF-8.
    return value.encode("latin-1").decode("utf-8", "replace")


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    query = parse_qs(_text(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    request = Request(
        method=environ.get("REQUEST_METHOD", "GET"),
        headers=_headers(environ),
        query=query,
        body=_body(environ),
    )
    reply = serving.route(_text(environ.get("PATH_INFO") or "/"), request)
    body = reply.body.encode("utf-8")
    headers = [*reply.headers.items(), ("Content-Length", str(len(body)))]
    start_response(f"{reply.status} {HTTPStatus(reply.status).phrase}", headers)
    return [body]


def _post_fork(_server: Any, _worker: Any) -> None:
    runtime.reset()  # what the master built (bootstrap) belongs to the master


def _warm_up(worker: Any) -> None:
    """Open the store and load every model before the worker takes its first request."""
    try:
        serving.health()
    except Exception:  # the worker serves anyway; /health and the log say what is wrong
        log.exception("worker %s: warm-up failed", getattr(worker, "pid", "?"))


def options(host: str, port: int, workers: int, threads: int, access_log: bool) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "keepalive": 5,
        "timeout": 30,
        "graceful_timeout": 10,
        "preload_app": True,  # the code is imported once; runtimes are built per worker
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": "info",
        "post_fork": _post_fork,
        "post_worker_init": _warm_up,
        "proc_name": "braze-recs",
    }


def run(host: str, port: int, workers: int, threads: int, access_log: bool = False) -> None:
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415 - a development requirement

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options(host, port, workers, threads, access_log).items():
                self.cfg.set(key, value)

        def load(self) -> Callable[..., Iterable[bytes]]:
            return application

    runtime.reset()
    gc.collect()  # close the master's SQLite connections before gunicorn forks
    Server().run()
