"""The production server's sends: a response leaves in one write, in order, before a close."""

from __future__ import annotations

import asyncio

from chalicelib.api.server import OneWriteTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


def test_a_response_head_and_body_leave_in_one_send() -> None:
    async def respond() -> Transport:
        transport = Transport()
        conn = OneWriteTransport(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        conn.write(HEAD)
        conn.write(b"[]")
        assert transport.sent == []  # held until the app yields to the loop
        await asyncio.sleep(0)
        conn.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
        await asyncio.sleep(0)
        assert conn.get_extra_info("peername") == "extra peername"  # the rest is the transport's
        return transport

    sent = asyncio.run(respond()).sent
    assert sent == [HEAD + b"[]", b"HTTP/1.1 202 Accepted\r\n\r\n"]


def test_a_close_sends_what_is_held_first_and_nothing_after() -> None:
    async def respond_and_close() -> Transport:
        transport = Transport()
        conn = OneWriteTransport(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        conn.write(HEAD)
        conn.write(b"[]")
        conn.close()
        await asyncio.sleep(0)  # the flush scheduled by the first write finds nothing to send
        return transport

    transport = asyncio.run(respond_and_close())
    assert transport.sent == [HEAD + b"[]"] and transport.closed
