"""Builds the settings, configuration and provider of the current environment, once per process
(and again only if the `RECS_*` environment changes, as it does between test-client stages)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from chalicelib.config import ConfigError, ProjectConfig, load_config
from chalicelib.providers.base import Provider
from chalicelib.settings import Settings, env_fingerprint


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    config: ProjectConfig
    provider: Provider


_lock = threading.Lock()
_cached: dict[tuple[tuple[str, str], ...], Runtime] = {}


def current() -> Runtime:
    fingerprint = env_fingerprint()
    runtime = _cached.get(fingerprint)
    if runtime is not None:
        return runtime
    with _lock:
        runtime = _cached.get(fingerprint)
        if runtime is None:
            runtime = build(Settings())
            _cached.clear()
            _cached[fingerprint] = runtime
    return runtime


def build(settings: Settings) -> Runtime:
    config = load_config(settings.config)
    provider: Provider
    if settings.provider == "local":
        # Imported here so that the `personalize` path never loads numpy or scipy.
        from chalicelib.providers.local import LocalProvider  # noqa: PLC0415

        provider = LocalProvider(settings, config)
    elif settings.provider == "personalize":
        from chalicelib.providers.personalize import PersonalizeProvider  # noqa: PLC0415

        provider = PersonalizeProvider(settings, config)
    else:  # pragma: no cover - Settings.provider is a Literal of the two
        raise ConfigError(f"unknown provider {settings.provider!r}")
    return Runtime(settings, config, provider)


def reset() -> None:
    """Forget the built runtime (tests that change the data directory's contents use this)."""
    with _lock:
        _cached.clear()
