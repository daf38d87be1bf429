"""Where tests keep what a person looks at after a run (screenshots, the schemathesis summary):
`artifacts/` at the project root, git-ignored, kept by CI as the run's artefacts."""

from __future__ import annotations

from chalicelib.settings import PROJECT_ROOT

ARTIFACTS = PROJECT_ROOT / "artifacts"
