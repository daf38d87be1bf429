"""`chalice package` run offline on the `dev` stage, and the generated templates checked: every
handler of `app.py` becomes a function with its event source, the stage's environment and the
hand-written IAM policy reach it, the zip stays lean, and cfn-lint passes the SAM template and
the infrastructure template.

Offline: Chalice would `pip download` the Lambda's wheels from an index; here its dependency
builder is replaced by a copy of the same distributions from this virtualenv (the files pip
installed for requirements.txt and what they require), which is what the zip would hold.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from chalicelib.settings import PROJECT_ROOT

STAGE = "dev"
HEAVY = ("numpy/", "scipy/", "lark/", "implicit/", "rich/", "optuna/", "sklearn/")


def _distributions(requirements: Path) -> list[metadata.Distribution]:
    """requirements.txt's distributions and, recursively, what they require (no extras)."""
    pending = [
        Requirement(line.split("#")[0].strip()).name
        for line in requirements.read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    seen: dict[str, metadata.Distribution] = {}
    while pending:
        name = pending.pop().lower().replace("_", "-")
        if name in seen:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                pending.append(req.name)
    return list(seen.values())


def _copy_installed(self: Any, abi: str, requirements_filepath: str, target: str) -> None:
    for dist in _distributions(Path(requirements_filepath)):
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if file.parts[0].endswith(".dist-info") or "__pycache__" in file.parts:
                continue
            if source.is_file() and not str(file).startswith(".."):
                destination = Path(target) / file
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)


MERGE_TEMPLATE = PROJECT_ROOT / "deploy" / "report-batch-item-failures.json"


def _package(
    tmp: Path, fmt: str, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...] = ()
) -> Path:
    from chalice.cli import main as chalice_main
    from chalice.deploy import packager

    project = tmp / f"project-{fmt}"
    project.mkdir()
    shutil.copy2(PROJECT_ROOT / "app.py", project / "app.py")
    shutil.copy2(PROJECT_ROOT / "requirements.txt", project / "requirements.txt")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PROJECT_ROOT / "chalicelib", project / "chalicelib", ignore=ignore)
    (project / ".chalice").mkdir()
    for path in (PROJECT_ROOT / ".chalice").glob("*.json"):
        shutil.copy2(path, project / ".chalice" / path.name)
    out = tmp / f"out-{fmt}"
    monkeypatch.setattr(packager.DependencyBuilder, "build_site_packages", _copy_installed)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    argv = ["chalice", "--project-dir", str(project), "package", "--pkg-format", fmt]
    monkeypatch.setattr(sys, "argv", [*argv, *extra, "--stage", STAGE, str(out)])
    with pytest.raises(SystemExit) as done:
        chalice_main()
    assert done.value.code == 0
    return out


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    from app import app

    tmp = tmp_path_factory.mktemp("package")
    # Chalice's CLI puts the stage's variables into os.environ and the project on sys.path while
    # it loads the app: undo both, or later tests would run on the `dev` stage's provider.
    environ, path = dict(os.environ), list(sys.path)
    with pytest.MonkeyPatch.context() as monkeypatch:
        outs = {"terraform": _package(tmp, "terraform", monkeypatch)}
        # CloudFormation cannot subscribe a Lambda to an existing bucket: Chalice refuses S3
        # event sources there (deploy those stages with `chalice deploy` or Terraform).
        if not any(type(s).__name__ == "S3EventConfig" for s in app.event_sources):
            extra = ("--merge-template", str(MERGE_TEMPLATE)) if MERGE_TEMPLATE.exists() else ()
            outs["cloudformation"] = _package(tmp, "cloudformation", monkeypatch, extra)
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path
    yield outs


def _stage() -> dict[str, Any]:
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    return {**config, **config["stages"][STAGE]}


def test_every_handler_is_a_function_with_the_stage_environment(packaged: dict[str, Path]) -> None:
    from app import app

    stage = _stage()
    terraform = json.loads((packaged["terraform"] / "chalice.tf.json").read_text())
    functions = terraform["resource"]["aws_lambda_function"]
    expected_env = {**stage["environment_variables"]}
    assert expected_env["RECS_PROVIDER"] == "personalize"
    names = {"api_handler"} | {source.name for source in app.event_sources}
    assert set(functions) == names
    for name, function in functions.items():
        own = stage.get("lambda_functions", {}).get(name, {})
        assert function["runtime"] == "python3.11"
        assert function["memory_size"] == own.get("lambda_memory_size", stage["lambda_memory_size"])
        variables = function["environment"]["variables"]
        assert {k: variables[k] for k in expected_env} == expected_env
        assert variables["RECS_CACHE_MAX_AGE"] == "300"
    api = functions["api_handler"]
    assert api["handler"] == "app.app"
    assert api["timeout"] == stage["lambda_functions"]["api_handler"]["lambda_timeout"]


def test_event_sources_are_wired(packaged: dict[str, Path]) -> None:
    from app import app

    terraform = json.loads((packaged["terraform"] / "chalice.tf.json").read_text())
    resources = terraform["resource"]
    mappings = json.dumps(resources.get("aws_lambda_event_source_mapping", {}))
    notifications = json.dumps(resources.get("aws_s3_bucket_notification", {}))
    for source in app.event_sources:
        kind = type(source).__name__
        if kind == "SQSEventConfig":
            assert f":{source.queue}" in mappings or source.queue in mappings, source.name
        elif kind == "KinesisEventConfig":
            assert f"stream/{source.stream}" in mappings, source.name
        elif kind == "S3EventConfig":
            assert source.name in notifications, source.name


def test_the_handwritten_policy_is_used_and_allows_no_wildcard_action(
    packaged: dict[str, Path],
) -> None:
    stage = _stage()
    assert stage["autogen_policy"] is False
    policy = json.loads((PROJECT_ROOT / ".chalice" / stage["iam_policy_file"]).read_text())
    terraform = json.loads((packaged["terraform"] / "chalice.tf.json").read_text())
    attached = terraform["resource"]["aws_iam_role_policy"]
    assert attached
    for role_policy in attached.values():
        assert json.loads(role_policy["policy"]) == policy
    for statement in policy["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action, action


def test_the_policy_allows_what_the_serving_path_calls() -> None:
    """Each AWS operation the personalize provider and item table make is in the policy, under
    its service's IAM prefix, and exists in botocore's model of that service."""
    import botocore.session

    called = {
        ("personalize-runtime", "GetRecommendations"),
        ("personalize-runtime", "GetPersonalizedRanking"),
        ("personalize", "DescribeCampaign"),
        ("dynamodb", "BatchGetItem"),
        ("dynamodb", "GetItem"),
        ("dynamodb", "UpdateItem"),
        ("dynamodb", "PutItem"),
        ("dynamodb", "BatchWriteItem"),
        ("sqs", "GetQueueUrl"),
        ("sqs", "SendMessage"),
    }
    session = botocore.session.get_session()
    stage = _stage()
    policy = json.loads((PROJECT_ROOT / ".chalice" / stage["iam_policy_file"]).read_text())
    allowed = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        allowed |= {actions} if isinstance(actions, str) else set(actions)
    for service, operation in called:
        assert operation in session.get_service_model(service).operation_names
        prefix = service.split("-")[0]  # personalize-runtime's actions are personalize:*
        assert f"{prefix}:{operation}" in allowed, f"{prefix}:{operation}"


def test_the_zip_is_lean(packaged: dict[str, Path]) -> None:
    zip_path = packaged["terraform"] / "deployment.zip"
    names = zipfile.ZipFile(zip_path).namelist()
    assert "app.py" in names
    assert "chalicelib/providers/personalize/provider.py" in names
    assert any(n.startswith("pydantic_core/") for n in names)
    assert not [n for n in names if n.startswith(HEAVY)]
    assert zip_path.stat().st_size < 15 * 1024 * 1024


def test_cfn_lint_passes_the_templates(packaged: dict[str, Path]) -> None:
    templates = [PROJECT_ROOT / "deploy" / "infrastructure.yaml"]
    if "cloudformation" in packaged:
        templates.append(packaged["cloudformation"] / "sam.json")
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(lint), *map(str, templates)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_merge_template_turns_on_partial_batch_responses(packaged: dict[str, Path]) -> None:
    """deploy/report-batch-item-failures.json names Chalice's real logical ids."""
    if "cloudformation" not in packaged or not MERGE_TEMPLATE.exists():
        pytest.skip("no SAM output (S3 event sources) or no merge template")
    sam = json.loads((packaged["cloudformation"] / "sam.json").read_text())
    function = sam["Resources"]["IngestSqs"]
    assert function["Type"] == "AWS::Serverless::Function"
    source = function["Properties"]["Events"]["IngestSqsSqsEventSource"]
    assert source["Type"] == "SQS"
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Properties"]["BatchSize"] == 100
