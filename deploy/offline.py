"""`chalice package` without a package index: Chalice's dependency builder `pip download`s the
Lambda's wheels; `copy_installed` stands in for it by copying the same distributions from this
virtualenv (requirements.txt and what it requires, no extras, no bytecode, as wheels hold none).
The package tests and the cold-start benchmark use it to build the zip `chalice deploy` would.

A stage is packaged as `python -m deploy sync` leaves it: a stage not synced in the project is
synced, in the copy, from an example stack (deploy/infrastructure.yaml created in moto, account
123456789012, us-east-1) and an example dataset group, so packaging needs no AWS account.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from deploy.stage import Stack, check_stage, write_stage

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_REGION, EXAMPLE_ACCOUNT = "us-east-1", "123456789012"  # moto's account
TEMPLATE = PROJECT_ROOT / "deploy" / "infrastructure.yaml"


def example_stack(stage: str, **parameters: str) -> Stack:
    """The outputs deploy/infrastructure.yaml gives `stage`, from the template created in moto
    (so the names are the template's own, not a copy of its naming rules)."""
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415 - a development dependency

    values = {"Stage": stage, **parameters}
    moto_log = logging.getLogger("moto")
    level = moto_log.level
    moto_log.setLevel(logging.ERROR)  # moto's CloudFormation skips the alarms and bucket policy
    try:
        with warnings.catch_warnings(), mock_aws():
            warnings.simplefilter("ignore")
            cfn = boto3.client("cloudformation", region_name=EXAMPLE_REGION)
            cfn.create_stack(
                StackName=f"braze-recs-{stage}",
                TemplateBody=TEMPLATE.read_text(),
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
                Capabilities=["CAPABILITY_NAMED_IAM"],
            )
            [described] = cfn.describe_stacks(StackName=f"braze-recs-{stage}")["Stacks"]
    finally:
        moto_log.setLevel(level)
    return Stack.from_outputs(described["Outputs"])


def example_personalize(dataset_group: str = "braze-shop") -> dict[str, str]:
    prefix = f"arn:aws:personalize:{EXAMPLE_REGION}:{EXAMPLE_ACCOUNT}"
    return {
        "RECS_DATASET_GROUP_ARN": f"{prefix}:dataset-group/{dataset_group}",
        "RECS_TRACKING_ID": "00000000-example-tracking-id",
        "RECS_EVENT_TRACKER_ARN": f"{prefix}:event-tracker/0example",
    }


def sync_example(project: Path, stage: str) -> None:
    """Sync `stage` in `project` from the example stack, unless it is synced already."""
    if check_stage(project, stage):
        write_stage(project, stage, example_stack(stage), example_personalize())


def distributions(requirements: Path) -> list[metadata.Distribution]:
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


def copy_installed(self: Any, abi: str, requirements_filepath: str, target: str) -> None:
    """A drop-in for `chalice.deploy.packager.DependencyBuilder.build_site_packages`."""
    for dist in distributions(Path(requirements_filepath)):
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if file.parts[0].endswith(".dist-info") or "__pycache__" in file.parts:
                continue
            if source.is_file() and not str(file).startswith(".."):
                destination = Path(target) / file
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)


def package(
    out: Path,
    stage: str,
    fmt: str = "terraform",
    extra: tuple[str, ...] = (),
    prepare: Callable[[Path, str], None] = sync_example,
) -> Path:
    """Run `chalice package` on a copy of the project (sources only) into `out`, offline;
    `prepare(copy, stage)` first (by default: sync the stage from the example stack).

    Chalice's CLI puts the stage's variables into os.environ and the project on sys.path while it
    loads the app, and exits: both are undone and the exit code checked here. `app` is imported
    afresh, as a new `chalice` process would, so that its event sources are the stage's.
    """
    from chalice.cli import main as chalice_main  # noqa: PLC0415 - a development dependency
    from chalice.deploy import packager  # noqa: PLC0415

    project = out.parent / f"{out.name}-project"
    project.mkdir(parents=True)
    shutil.copy2(PROJECT_ROOT / "app.py", project / "app.py")
    shutil.copy2(PROJECT_ROOT / "requirements.txt", project / "requirements.txt")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PROJECT_ROOT / "chalicelib", project / "chalicelib", ignore=ignore)
    (project / ".chalice").mkdir()
    for path in (PROJECT_ROOT / ".chalice").glob("*.json"):
        shutil.copy2(path, project / ".chalice" / path.name)
    prepare(project, stage)
    argv = ["chalice", "--project-dir", str(project), "package", "--pkg-format", fmt]
    environ, path, saved_argv = dict(os.environ), list(sys.path), sys.argv
    loaded_app = sys.modules.pop("app", None)
    original = packager.DependencyBuilder.build_site_packages
    packager.DependencyBuilder.build_site_packages = copy_installed  # type: ignore[method-assign]
    sys.argv = [*argv, *extra, "--stage", stage, str(out)]
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # packaging calls no AWS service
    try:
        code = chalice_main()  # returns on some errors, exits on others
    except SystemExit as done:
        code = done.code
    finally:
        packager.DependencyBuilder.build_site_packages = original  # type: ignore[method-assign]
        sys.modules.pop("app", None)
        if loaded_app is not None:
            sys.modules["app"] = loaded_app
        sys.argv = saved_argv
        sys.path[:] = path
        os.environ.clear()
        os.environ.update(environ)
    if code not in (0, None):
        raise RuntimeError(f"chalice package exited with {code}")
    return out
