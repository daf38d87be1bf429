"""Deployment tooling run on the developer's machine or CI; never shipped in the Lambda zip."""
