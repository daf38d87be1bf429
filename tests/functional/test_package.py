"""`chalice package` run offline on every deployable stage, synced from its infrastructure stack
(deploy/infrastructure.yaml created in moto), and compared with that stack: each stage's package
subscribes exactly the queue, stream and bucket the stack made for the stage, its functions get
the stage's settings and each its own policy, and no name of another stage appears. Also: the
zip stays lean, cfn-lint passes the infrastructure template, and the bytecode zip is complete.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.settings import PROJECT_ROOT
from deploy import chalice_compiled, offline
from deploy.stage import Stack, check_stage, write_stage

HEAVY = ("numpy/", "scipy/", "lark/", "implicit/", "rich/", "optuna/", "sklearn/")
CONFIG = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
# The stages that deploy to AWS: every one on the personalize provider.
STAGES = [
    name
    for name, stage in CONFIG["stages"].items()
    if stage.get("environment_variables", {}).get("RECS_PROVIDER") == "personalize"
]
# (stage, stack parameters): every stage with its stream, and one made without it.
CASES = [(s, {}) for s in STAGES] + [("prod", {"CreateEventsStream": "false"})]


@dataclass
class Packaged:
    stage: str
    stack: Stack
    out: Path

    @property
    def project(self) -> Path:
        return self.out.parent / f"{self.out.name}-project"

    @property
    def terraform(self) -> dict[str, Any]:
        return json.loads((self.out / "chalice.tf.json").read_text())

    def config(self) -> dict[str, Any]:
        return json.loads((self.project / ".chalice" / "config.json").read_text())


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Packaged]:
    tmp = tmp_path_factory.mktemp("package")
    done = {}
    for stage, parameters in CASES:
        stack = offline.example_stack(stage, **parameters)
        label = f"{stage}-{'-'.join(parameters.values()) or 'stream'}"

        def prepare(project: Path, name: str, stack: Stack = stack) -> None:
            write_stage(project, name, stack, offline.example_personalize())

        out = offline.package(tmp / label, stage, "terraform", prepare=prepare)
        done[label] = Packaged(stage, stack, out)
    return done


def test_every_stage_is_packaged_and_compared() -> None:
    assert STAGES == ["dev", "prod"]


@pytest.mark.parametrize("label", ["dev-stream", "prod-stream", "prod-false"])
def test_each_package_subscribes_exactly_its_stacks_resources(
    packaged: dict[str, Packaged], label: str
) -> None:
    case = packaged[label]
    resources = case.terraform["resource"]
    settings = case.stack.settings
    mappings = resources["aws_lambda_event_source_mapping"]
    sources = {name: m["event_source_arn"].rsplit(":", 1)[-1] for name, m in mappings.items()}
    expected = {"ingest_sqs-sqs-event-source": settings["RECS_EVENTS_QUEUE"]}
    if "RECS_EVENTS_STREAM" in settings:
        expected["ingest_kinesis-kinesis-event-source"] = f"stream/{settings['RECS_EVENTS_STREAM']}"
    assert sources == expected
    [notification] = resources["aws_s3_bucket_notification"].values()
    assert notification["bucket"] == settings["RECS_IMPORT_BUCKET"]
    prefixes = sorted(f["filter_prefix"] for f in notification["lambda_function"])
    assert prefixes == ["currents/", "imports/"]  # CSV imports and Braze Currents, one bucket
    functions = resources["aws_lambda_function"]
    wanted = {"api_handler", "ingest_sqs", "import_s3", "ingest_currents"}
    assert set(functions) == wanted | (
        {"ingest_kinesis"} if "RECS_EVENTS_STREAM" in settings else set()
    )
    for function in functions.values():
        variables = function["environment"]["variables"]
        for setting, value in settings.items():
            assert variables[setting] == value, setting
        assert variables.get("RECS_EVENTS_STREAM", "") == settings.get("RECS_EVENTS_STREAM", "")
    others = [s for s in CONFIG["stages"] if s != case.stage]
    text = json.dumps(case.terraform)
    assert all(f"braze-recs-{o}-" not in text and f"braze-recs/{o}/" not in text for o in others)


@pytest.mark.parametrize("label", ["dev-stream", "prod-stream"])
def test_each_function_runs_under_its_own_policy_of_its_stage(
    packaged: dict[str, Packaged], label: str
) -> None:
    case = packaged[label]
    config = case.config()["stages"][case.stage]
    assert config["autogen_policy"] is False and "iam_policy_file" not in config
    roles = case.terraform["resource"]["aws_iam_role_policy"]
    assert set(roles) == {
        f"{f}_role"
        for f in ("api_handler", "ingest_sqs", "ingest_kinesis", "import_s3", "ingest_currents")
    }
    seen = set()
    for role, attached in roles.items():
        function = role.removesuffix("_role")
        path = case.project / ".chalice" / config["lambda_functions"][function]["iam_policy_file"]
        policy = json.loads(path.read_text())
        assert json.loads(attached["policy"]) == policy
        text = json.dumps(policy)
        seen.add(text)
        assert f"braze-recs-{case.stage}-" in text
        for statement in policy["Statement"]:
            for action in statement["Action"]:
                assert "*" not in action, action
            scoped = (
                [statement["Resource"]]
                if isinstance(statement["Resource"], str)
                else statement["Resource"]
            )
            for resource in scoped:
                # "*" only for list actions, which have no resource-level permission
                assert resource != "*" or all(":List" in a for a in statement["Action"]), statement
                assert resource == "*" or resource.split(":")[3] in ("", offline.EXAMPLE_REGION)
    assert len(seen) == 5  # one policy per function, not one for all


def test_a_stage_sync_has_not_filled_is_refused_not_guessed(tmp_path: Path) -> None:
    """The shipped config names no resource: `python -m deploy` refuses the stage, and its
    package subscribes nothing rather than another stage's (or a default) resource."""
    problems = check_stage(PROJECT_ROOT, "prod")
    assert "RECS_IMPORT_BUCKET is not set: run `python -m deploy sync --stage prod`" in problems
    with pytest.raises(RuntimeError, match="chalice package exited"):
        offline.package(tmp_path / "out", "prod", prepare=lambda project, stage: None)


@pytest.fixture(scope="module")
def dev(
    packaged: dict[str, Packaged], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    """The dev package, and the same through deploy/chalice_compiled.py (bytecode)."""
    from chalice.deploy import packager

    outs = {"plain": packaged["dev-stream"].out}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for cls in (
            packager.LambdaDeploymentPackager,
            packager.AppOnlyDeploymentPackager,
            packager.LayerDeploymentPackager,
        ):
            monkeypatch.setattr(cls, "create_deployment_package", cls.create_deployment_package)
        chalice_compiled.install()
        outs["compiled"] = offline.package(tmp_path_factory.mktemp("compiled") / "out", "dev")
    yield outs


def test_the_functions_get_the_stage_settings_and_sizes(packaged: dict[str, Packaged]) -> None:
    case = packaged["dev-stream"]
    config = case.config()
    stage = {**config, **config["stages"]["dev"]}
    functions = case.terraform["resource"]["aws_lambda_function"]
    for name, function in functions.items():
        own = stage.get("lambda_functions", {}).get(name, {})
        assert function["runtime"] == "python3.11"
        assert function["memory_size"] == own.get("lambda_memory_size", stage["lambda_memory_size"])
        variables = function["environment"]["variables"]
        assert {k: variables[k] for k in stage["environment_variables"]} == stage[
            "environment_variables"
        ]
        assert variables["RECS_CACHE_MAX_AGE"] == "300"
        assert "RECS_SQS_BATCH_ITEM_FAILURES" not in variables  # set by `python -m deploy deploy`
    api = functions["api_handler"]
    assert api["handler"] == "app.app"
    assert api["timeout"] == stage["lambda_functions"]["api_handler"]["lambda_timeout"]


def test_the_zip_is_lean(dev: dict[str, Path]) -> None:
    zip_path = dev["plain"] / "deployment.zip"
    names = zipfile.ZipFile(zip_path).namelist()
    assert "app.py" in names
    assert "chalicelib/providers/personalize/provider.py" in names
    assert any(n.startswith("pydantic_core/") for n in names)
    assert not [n for n in names if n.startswith(HEAVY)]
    assert not [n for n in names if n.startswith("deploy/")]
    assert zip_path.stat().st_size < 15 * 1024 * 1024


def test_cfn_lint_passes_the_infrastructure_template() -> None:
    lint = Path(sys.executable).parent / "cfn-lint"
    template = PROJECT_ROOT / "deploy" / "infrastructure.yaml"
    result = subprocess.run([str(lint), str(template)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compiled_package_holds_bytecode_for_every_module(dev: dict[str, Path]) -> None:
    """What `python -m deploy deploy` uploads: the plain zip plus a hash-checked .pyc for every
    module, and a cold import from it compiles nothing."""
    plain = set(zipfile.ZipFile(dev["plain"] / "deployment.zip").namelist())
    compiled = zipfile.ZipFile(dev["compiled"] / "deployment.zip")
    names = set(compiled.namelist())
    tag = sys.implementation.cache_tag
    assert not [n for n in plain if "__pycache__/" in n]
    modules = [n for n in plain if n.endswith(".py")]
    expected = {
        f"{n.rpartition('/')[0]}/__pycache__/{n.rpartition('/')[2][:-3]}.{tag}.pyc".lstrip("/")
        for n in modules
    }
    assert names == plain | expected
    header = compiled.read(f"chalicelib/api/__pycache__/routes.{tag}.pyc")[4:8]
    assert int.from_bytes(header, "little") == 0b11  # hash-based, checked against the source

    task = dev["compiled"] / "task"
    compiled.extractall(task)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RECS_")},
        "PYTHONPATH": str(task),
        "PYTHONDONTWRITEBYTECODE": "1",
        "RECS_PROVIDER": "personalize",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    code = (
        "import app\nfrom chalicelib.api import routes\nfrom chalicelib.seam import runtime\n"
        "runtime.current()"
    )
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
