"""`chalice package` run offline on the `dev` stage, and the generated templates checked: every
handler of `app.py` becomes a function with its event source, the stage's environment and the
hand-written IAM policy reach it, the zip stays lean, and cfn-lint passes the SAM template and
the infrastructure template.

Offline (`deploy/offline.py`): Chalice would `pip download` the Lambda's wheels from an index;
here its dependency builder is replaced by a copy of the same distributions from this virtualenv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.settings import PROJECT_ROOT
from deploy import chalice_compiled, offline

STAGE = "dev"
HEAVY = ("numpy/", "scipy/", "lark/", "implicit/", "rich/", "optuna/", "sklearn/")


MERGE_TEMPLATE = PROJECT_ROOT / "deploy" / "report-batch-item-failures.json"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    from app import app

    tmp = tmp_path_factory.mktemp("package")
    outs = {"terraform": offline.package(tmp / "out-terraform", STAGE, "terraform")}
    # CloudFormation cannot subscribe a Lambda to an existing bucket: Chalice refuses S3
    # event sources there (deploy those stages with `chalice deploy` or Terraform).
    if not any(type(s).__name__ == "S3EventConfig" for s in app.event_sources):
        extra = ("--merge-template", str(MERGE_TEMPLATE)) if MERGE_TEMPLATE.exists() else ()
        outs["cloudformation"] = offline.package(tmp / "out-cfn", STAGE, "cloudformation", extra)
    # The same package through deploy/chalice_compiled.py, whose packagers add bytecode.
    from chalice.deploy import packager

    with pytest.MonkeyPatch.context() as monkeypatch:
        for cls in (
            packager.LambdaDeploymentPackager,
            packager.AppOnlyDeploymentPackager,
            packager.LayerDeploymentPackager,
        ):
            monkeypatch.setattr(cls, "create_deployment_package", cls.create_deployment_package)
        chalice_compiled.install()
        outs["compiled"] = offline.package(tmp / "out-compiled", STAGE, "terraform")
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


def test_the_compiled_package_holds_bytecode_for_every_module(packaged: dict[str, Path]) -> None:
    """What `deploy/chalice_compiled.py deploy` uploads: the plain zip plus a hash-checked .pyc
    for every module, and a cold import from it compiles nothing."""
    plain = set(zipfile.ZipFile(packaged["terraform"] / "deployment.zip").namelist())
    compiled = zipfile.ZipFile(packaged["compiled"] / "deployment.zip")
    names = set(compiled.namelist())
    tag = sys.implementation.cache_tag
    assert not [n for n in plain if "__pycache__/" in n]
    modules = [n for n in plain if n.endswith(".py")]
    expected = {
        f"{n.rpartition('/')[0]}/__pycache__/{n.rpartition('/')[2][:-3]}.{tag}.pyc".lstrip("/")
        for n in modules
    }
    assert names == plain | expected
    header = compiled.read(f"chalicelib/__pycache__/serving.{tag}.pyc")[4:8]
    assert int.from_bytes(header, "little") == 0b11  # hash-based, checked against the source

    task = packaged["compiled"] / "task"
    compiled.extractall(task)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RECS_")},
        "PYTHONPATH": str(task),
        "PYTHONDONTWRITEBYTECODE": "1",
        "RECS_PROVIDER": "personalize",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    code = "import app\nfrom chalicelib import serving, runtime\nruntime.current()"
    out = subprocess.run(
        [sys.executable, "-v", "-c", code],
        cwd=task,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    loaded_from_source = [
        line for line in out.stderr.splitlines() if line.startswith(f"# code object from {task}")
    ]
    assert loaded_from_source == []
    assert f"code object from '{task}/pydantic/__pycache__/" in out.stderr
