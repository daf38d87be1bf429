"""`python -m chalicelib report` on the trained shop: every stored version side by side, the
plots of the evaluation recorded at train, which version each campaign serves, and the peers of
the engine benchmark when its results file is there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chalicelib import cli


def _report(tmp_path: Path, *args: str) -> str:
    out = tmp_path / "report.html"
    assert cli.main(["report", "--output", str(out), *args]) == 0
    return out.read_text(encoding="utf-8")


def test_the_report_of_the_trained_shop(data_dir: Path, tmp_path: Path) -> None:
    html = _report(tmp_path)
    for solution in ("user-personalization", "similar-items", "personalized-ranking"):
        assert f"<h2>{solution} <span" in html
    assert html.count("<span class=served>served</span>") == 3  # one per campaign
    titles = re.findall(r'<svg [^>]*aria-label="([^"]+)"', html)
    assert titles.count("NDCG@k on held-out users") == 3
    assert titles.count("Catalogue coverage of the top k") == 3
    assert titles.count("NDCG@10 by length of the user&#x27;s history") == 3
    assert "No benchmark results at" in html
    assert "No per-k" not in html  # every version was trained with its evaluation recorded


def test_a_retrained_version_stands_beside_the_first(data_dir: Path, tmp_path: Path) -> None:
    assert cli.main(["train", "--solution", "similar-items"]) == 0
    html = _report(tmp_path, "--solution", "similar-items")
    assert "2 version(s), newest first" in html
    assert html.count("<span class=served>served</span>") == 1  # the newer one


def test_the_peers_of_the_benchmark(data_dir: Path, tmp_path: Path) -> None:
    versions = json.loads(_versions_json(tmp_path))
    interactions = next(v for v in versions if v["recipe"] == "user-personalization")["counts"]
    peers = tmp_path / "bench.json"
    rows = [
        {
            "model": "this engine (defaults)",
            "metrics": {"precision_at_10": 0.2},
            "fit_seconds": 1.0,
        },
        {"model": "RP3beta tuned", "metrics": {"precision_at_10": 0.1}, "fit_seconds": 2.0},
    ]
    peers.write_text(
        json.dumps(
            {
                "written": "2026-01-01",
                "command": "bench/engine.py",
                "datasets": [
                    {
                        "dataset": "shop",
                        "title": "the shop",
                        "interactions": interactions["interactions"],
                        "rows": rows,
                    }
                ],
            }
        )
    )
    html = _report(tmp_path, "--peers", str(peers))
    assert "Peers (engine benchmark)" in html and "RP3beta tuned" in html
    assert ", same data" in html  # the store holds the benchmark's data: its version beside them


def test_unreadable_peers_are_left_out_with_a_message(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bench.json"
    bad.write_text("{not json")
    html = _report(tmp_path, "--peers", str(bad))
    assert "not read" in capsys.readouterr().err
    assert "No benchmark results at" in html


def _versions_json(tmp_path: Path) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main(["versions", "--json"]) == 0
    return buffer.getvalue()
