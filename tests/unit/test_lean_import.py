"""The Lambda's import path stays lean: loading `app` pulls in no engine library."""

import os
import subprocess
import sys

from chalicelib.settings import PROJECT_ROOT

ENGINE_MODULES = ("numpy", "scipy", "lark", "implicit", "rich")
PERSONALIZE_ENV = {
    "RECS_PROVIDER": "personalize",
    "RECS_CAMPAIGN_ARN": "arn:aws:personalize:us-east-1:123456789012:campaign/recs",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _cold(code: str, env: dict[str, str] | None = None) -> str:
    """What `code` prints in a fresh interpreter (no RECS_* of this process, `env` added)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**base, **(env or {})},
    )
    return out.stdout.strip()


def test_import_app_loads_no_engine_library():
    code = f"import sys, app; print(','.join(m for m in {ENGINE_MODULES!r} if m in sys.modules))"
    assert _cold(code) == ""


def test_import_app_loads_only_chalice():
    """Every Lambda function imports app.py: each loads its own part of chalicelib on first call."""
    code = (
        "import sys, app; print(','.join(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('pydantic', 'boto3', 'botocore', 'chalicelib'))))"
    )
    assert _cold(code, PERSONALIZE_ENV) == ""


def test_requirements_txt_holds_no_engine_library():
    lines = (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    names = {line.split("==")[0].strip().lower() for line in lines if line and line[0] != "#"}
    assert not names & {"numpy", "scipy", "lark", "implicit", "rich", "optuna", "pandas"}


def test_the_personalize_provider_path_loads_no_engine_library():
    """`import app` plus building the personalize runtime, as the first request does."""
    code = (
        "import sys, app\n"
        "from chalicelib.seam import runtime\n"
        "assert runtime.current().serving.name == 'personalize'\n"
        f"print(','.join(m for m in {ENGINE_MODULES!r} if m in sys.modules))"
    )
    assert _cold(code, PERSONALIZE_ENV) == ""


def test_fastavro_loads_with_the_currents_function_alone():
    """The API, SQS, Kinesis and import functions never load fastavro; `ingest_currents` does."""
    others = (
        "import sys, app\n"
        "from chalicelib.seam import runtime\n"
        "from chalicelib.api import routes\n"
        "from chalicelib.handlers import imports, ingest\n"
        "runtime.current()\n"
        "print('fastavro' in sys.modules)"
    )
    assert _cold(others, PERSONALIZE_ENV) == "False"
    currents = (
        "import sys\nfrom chalicelib.handlers import currents\nprint('fastavro' in sys.modules)"
    )
    # Imported on the first file read, not at module import: the handler's module stays cheap.
    assert _cold(currents, PERSONALIZE_ENV) == "False"
    read = (
        "import io, sys\nfrom chalicelib.currents import avro\n"
        "try:\n    list(avro.records(io.BytesIO(b'junk')))\nexcept ValueError:\n    pass\n"
        "print('fastavro' in sys.modules)"
    )
    assert _cold(read, PERSONALIZE_ENV) == "True"


def test_only_the_preview_route_loads_python_liquid():
    """python-liquid is a development requirement (the Lambda does not serve /preview): the API
    path, /openapi.json included, never imports it."""
    code = (
        "import sys, app\n"
        "from chalicelib.api import routes, openapi\n"
        "openapi.document(['exclude-purchased'])\n"
        "print(','.join(m for m in ('liquid', 'babel', 'markupsafe') if m in sys.modules))"
    )
    assert _cold(code, PERSONALIZE_ENV) == ""
    names = (PROJECT_ROOT / "requirements.txt").read_text().lower()
    assert "liquid" not in names
