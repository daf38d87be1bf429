"""Every command of README's "Try it" and "Filters" sections, run as printed (bash and curl)
against what `make run` starts (`python -m chalicelib serve --bootstrap`, a fresh store, a free
port), in README's order; the `#   ...` lines under a command say what it prints, and each is
checked here. A README command without such a line, or a line no check here understands, fails.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.settings import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
SAMPLE = PROJECT_ROOT / "data" / "retail-demo-store"
KEY = "dev-local-key"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


@dataclass
class Command:
    section: str
    text: str
    expect: list[str] = field(default_factory=list)


def section(title: str) -> str:
    """README's text under `## title` up to the next heading of that level."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def commands(title: str) -> tuple[list[str], list[Command]]:
    """The shell blocks' variable assignments and commands, each with its `#   ` lines."""
    prelude: list[str] = []
    found: list[Command] = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", section(title), re.DOTALL):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if line.startswith("#   ") and found:
                found[-1].expect.append(line[4:].strip())
            if not line.strip() or line.startswith("#"):
                continue
            text = line
            while text.endswith("\\") or text.count("'") % 2:
                text += "\n" + lines[i]
                i += 1
            if re.match(r"^[A-Z_]+=", text):
                prelude.append(text)
            else:
                found.append(Command(title, text))
    return prelude, found


TRY_PRELUDE, TRY = commands("Try it")
FILTER_PRELUDE, FILTERS = commands("Filters")
ALL = TRY + FILTERS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`make run`'s command on a fresh store and a free port, until it stops answering."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("readme-store")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env["RECS_DATA_DIR"] = str(data_dir)
    log = (data_dir / "server.log").open("w")
    command = [sys.executable, "-m", "chalicelib", "serve", "--bootstrap", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "1"], cwd=PROJECT_ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            assert process.poll() is None, (data_dir / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if json.load(r).get("model_version"):
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the server did not answer within 900 s")
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def run(port: int, prelude: list[str], text: str) -> tuple[dict[str, str], str]:
    """The command in bash, as printed but for the port; its headers (with `-i`) and body."""
    script = "\n".join([*prelude, text]).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    headers: dict[str, str] = {}
    if out.startswith("HTTP/"):
        head, _, out = out.replace("\r\n", "\n").partition("\n\n")
        for line in head.splitlines()[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return headers, out


def purchases(user_id: str) -> set[str]:
    with gzip.open(SAMPLE / "interactions.csv.gz", "rt", encoding="utf-8") as fh:
        return {
            row["ITEM_ID"]
            for row in csv.DictReader(fh)
            if row["USER_ID"] == user_id and row["EVENT_TYPE"].lower() == "purchase"
        }


def get(port: int, path: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"x-api-key": KEY})
    with urllib.request.urlopen(request, timeout=10) as r:
        body = json.load(r)
    assert isinstance(body, list)
    return body


def categories(items: list[dict[str, Any]]) -> set[str]:
    return {item.get("category_l1") for item in items}


def _five_decorated(items: list[dict[str, Any]], command: Command, port: int) -> None:
    assert len(items) == 5
    for item in items:
        assert {"id", "url", "name", "price", "image", "category_l1"} <= set(item)
        assert item["name"] and isinstance(item["price"], float)


def _without_purchases(items: list[dict[str, Any]], command: Command, port: int) -> None:
    bought = purchases("74")
    assert items and not {i["id"] for i in items} & bought
    unfiltered = get(port, "/recommendations?user_id=74&num_results=5")
    assert {i["id"] for i in unfiltered} & bought, "the filter must change the list visibly"


def _same_items(items: list[dict[str, Any]], command: Command, port: int) -> None:
    asked = json.loads(command.text.split("-d '", 1)[1].rstrip("'"))["item_ids"]
    assert sorted(i["id"] for i in items) == sorted(asked)


def _only(*names: str) -> Callable[[list[dict[str, Any]], Command, int], None]:
    def check(items: list[dict[str, Any]], command: Command, port: int) -> None:
        assert items and categories(items) <= set(names), categories(items)

    return check


def _cheap_unbought(items: list[dict[str, Any]], command: Command, port: int) -> None:
    assert items and all(i["price"] <= 5 for i in items)
    assert not {i["id"] for i in items} & purchases("74")


def _cheaper_housewares(items: list[dict[str, Any]], command: Command, port: int) -> None:
    assert items and categories(items) == {"housewares"}
    assert all(i["price"] < 129.99 for i in items)


def _just_the_set(items: list[dict[str, Any]], command: Command, port: int) -> None:
    assert [i["id"] for i in items] == ["de81e406-4fee-4934-9274-31b8b4acf002"]


def _tools(present: bool) -> Callable[[list[dict[str, Any]], Command, int], None]:
    def check(items: list[dict[str, Any]], command: Command, port: int) -> None:
        assert len(items) == 10
        assert ("tools" in categories(items)) is present, categories(items)

    return check


def _five(items: list[dict[str, Any]], command: Command, port: int) -> None:
    assert len(items) == 5


# What README says in words, checked on the item list the command printed.
CHECKS: dict[str, Callable[[list[dict[str, Any]], Command, int], None]] = {
    "5 items: id, url, name, price, image, then the item's own fields (category_l1, ...)": (
        _five_decorated
    ),
    "the same list without 74's purchases": _without_purchases,
    "5 items, most like the housewares set": _five,
    "the 3 items, best first for 74": _same_items,
    'only footwear and accessories ("category_l1")': _only("footwear", "accessories"),
    "only items priced 5 or less that 74 never bought": _cheap_unbought,
    "only housewares": _only("housewares"),
    "only housewares under 129.99": _cheaper_housewares,
    "only the housewares item, de81e406-4fee-4934-9274-31b8b4acf002": _just_the_set,
    "tools among them": _tools(present=True),
    "no tools": _tools(present=False),
}


def check(expect: str, headers: dict[str, str], body: str, command: Command, port: int) -> None:
    if re.fullmatch(r"[A-Z][\w-]+: \S+", expect):  # a response header
        name, value = expect.split(": ", 1)
        assert headers.get(name.lower()) == value, headers
        return
    if expect in CHECKS:
        CHECKS[expect](json.loads(body), command, port)
        return
    if expect.startswith("{"):  # JSON, whole or with its first fields and `...`
        shown = json.loads(re.sub(r",\s*\.\.\.\s*}$", "}", expect))
        got = json.loads(body)
        assert {k: got.get(k) for k in shown} == shown
        if "..." not in expect:
            assert got == shown
        return
    pytest.fail(f"README: no check here understands {expect!r}")


def test_readme_sections_have_commands() -> None:
    assert len(TRY) >= 10 and len(FILTERS) >= 8
    assert TRY_PRELUDE == ["KEY='x-api-key: dev-local-key'"]


@pytest.mark.parametrize(
    "command", ALL, ids=[f"{c.section}-{n}" for n, c in enumerate(ALL, start=1)]
)
def test_readme_command(server: int, command: Command) -> None:
    assert command.expect, f"README shows no result for {command.text!r}"
    headers, body = run(server, TRY_PRELUDE + FILTER_PRELUDE, command.text)
    for expect in command.expect:
        check(expect, headers, body, command, server)
