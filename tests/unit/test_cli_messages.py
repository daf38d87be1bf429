"""What a newcomer sees from the command line: one-line errors with exit code 2, progress that
shows its totals and ends at them, a busy port refused in one line, the CLI from any directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import cli
from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT


@pytest.fixture(autouse=True)
def _fresh_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECS_CONFIG", raising=False)
    runtime.reset()


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return err.strip()


def test_import_of_a_missing_file_is_one_line_naming_it(
    empty_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _one_line_error(capsys, ["import", "interactions", "missing.csv"])
    assert err == "import: no such file: missing.csv"


def test_metrics_of_an_unknown_version_says_which(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _one_line_error(capsys, ["metrics", "--version", "bogus"])
    assert err == "metrics: no solution version 'bogus'; see `versions`"


def test_recommend_with_an_unknown_filter_names_the_configured_ones(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _one_line_error(capsys, ["recommend", "u1", "--filter", "nope"])
    assert "no filter named 'nope' is configured" in err
    assert "exclude-purchased" in err


def test_deploy_of_an_unknown_version_says_which(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _one_line_error(capsys, ["deploy", "recommendations", "--version", "bogus"])
    assert "no solution version 'bogus'" in err


@pytest.mark.parametrize("command", ["train", "versions", "metrics"])
def test_an_unknown_solution_names_the_configured_ones(
    data_dir: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    err = _one_line_error(capsys, [command, "--solution", "nope"])
    assert err == (
        f"{command}: no solution 'nope' in the configuration "
        "(configured: user-personalization, personalized-ranking, similar-items)"
    )


def test_batch_of_a_missing_input_names_it(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "users.jsonl"
    output = tmp_path / "recs.jsonl"
    err = _one_line_error(capsys, ["batch", "--input", str(missing), "--output", str(output)])
    assert err == f"batch: no such file: {missing}"
    assert not list(tmp_path.glob("recs.jsonl*"))  # no output, no half-written .part file


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["import", "interactions", "missing.csv"], "no such file: missing.csv"),
        (["import", "currents", "missing-folder"], "missing-folder"),
        (["train"], "training needs at least 1000 interactions; there are 0"),
        (["deploy", "recommendations"], "no solution version to deploy to 'recommendations'"),
        (["metrics", "--version", "bogus"], "no solution version 'bogus'; see `versions`"),
        (["versions", "--solution", "nope"], "no solution 'nope' in the configuration"),
        (["recommend", "u1", "--filter", "nope"], "no filter named 'nope' is configured"),
        (["batch", "--input", "in.jsonl", "--output", "out.jsonl"], "no such file: in.jsonl"),
        (
            ["batch", "--input", "in.jsonl", "--output", "o.jsonl", "--filter-value", "A=b"],
            "--filter-value needs --filter",
        ),
        (["braze-push", "recs.jsonl"], "RECS_BRAZE"),
        (["segments", "--items", ",", "--dry-run"], "--items names no item"),
        (["replay-currents"], "the local provider keeps no failures queue"),
        (["replay-imports", "--dry-run"], "the local provider keeps no failures queue"),
        (["replay-imports", "--stage", "qa"], "no stage 'qa' in .chalice/config.json"),
        (["catalogue", "missing.csv"], "no such file: missing.csv"),
        (["popular", "--input", "missing.csv"], "no such file: missing.csv"),
        (["setup", "--config", "missing.toml"], "missing.toml"),
        (["report", "--output", "no/such/folder/report.html"], "no such file: "),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_every_command_says_its_error_in_one_form(
    empty_data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    says: str,
) -> None:
    """`COMMAND: what is wrong`, whichever command: never `COMMAND failed:`, never bare."""
    monkeypatch.chdir(empty_data_dir.parent)
    err = _one_line_error(capsys, argv)
    command, _, message = err.partition(": ")
    assert command == argv[0], err
    assert says in message, err
    assert "failed:" not in err


@pytest.mark.parametrize("command", ["attribution", "report"])
@pytest.mark.parametrize("days", ["0", "-3", "nan", "inf", "a week"])
def test_a_look_back_that_is_no_number_of_days_is_refused(
    capsys: pytest.CaptureFixture[str], command: str, days: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--days", days])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert f"--days: takes a number of days above 0, not {days!r}" in err


def test_an_interrupted_command_says_so_in_the_same_form(
    empty_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("chalicelib.cli.workflow.cmd_versions", interrupted)
    assert cli.main(["versions"]) == 130
    assert capsys.readouterr().err == "versions: interrupted\n"


def test_a_bad_argument_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["recommend", "u1", "--num-results", "many"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "invalid int value: 'many'" in err


def test_import_progress_shows_the_total_and_ends_at_it(
    empty_data_dir: Path, shop_csv: Path
) -> None:
    seen: dict[str, list[tuple[int, int | None]]] = {}

    def report(stage: str, done: int, total: int | None) -> None:
        seen.setdefault(stage, []).append((done, total))

    workflow = runtime.current().workflow
    for dataset in ("items", "interactions"):
        result = workflow.import_file(dataset, str(shop_csv / f"{dataset}.csv.gz"), "full", report)
        updates = seen[f"importing {dataset}"]
        assert updates[0] == (0, result.rows)  # the total from the start, even for small files
        assert updates[-1] == (result.rows, result.rows)
        assert all(total == result.rows for _, total in updates)


def test_training_progress_counts_held_out_users_to_their_total(
    empty_data_dir: Path, shop_csv: Path
) -> None:
    seen: dict[str, list[tuple[int, int | None]]] = {}

    def report(stage: str, done: int, total: int | None) -> None:
        seen.setdefault(stage, []).append((done, total))

    workflow = runtime.current().workflow
    workflow.import_file("interactions", str(shop_csv / "interactions.csv.gz"), "full")
    workflow.train("user-personalization", report)
    for stage, updates in seen.items():
        done, total = updates[-1]
        assert total is not None and done == total > 0, (stage, updates)
    evaluating = seen["user-personalization: evaluating"]
    assert len(evaluating) > 2  # it moves, user by user, rather than jumping at the end
    knobs = [done for done, _ in seen["user-personalization: choosing knobs"]]
    assert knobs == sorted(knobs) and len(set(knobs)) == 4  # 0, then each of the three steps


def test_a_busy_port_is_refused_in_one_line_before_any_work(
    empty_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _one_line_error(capsys, ["serve", "--bootstrap", "--port", str(port)])
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert f"make run PORT={port + 1}" in err
    assert not runtime.current().serving.health().get("items")  # nothing was imported


def test_the_port_comes_from_port_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8123")
    assert cli.parser().parse_args(["serve"]).port == 8123
    monkeypatch.delenv("PORT")
    assert cli.parser().parse_args(["serve"]).port == 8000


def test_the_cli_works_from_any_directory(tmp_path: Path) -> None:
    """`make` puts the project on the venv's path (tools/venv.py link): no PYTHONPATH, no cd."""
    if not (PROJECT_ROOT / ".venv" / ".linked").exists():
        pytest.skip("the venv was not made by make")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["RECS_DATA_DIR"] = str(tmp_path / "store")
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib", "versions"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "No module named" not in done.stderr
