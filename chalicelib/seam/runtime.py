"""Builds the settings, configuration and provider of the current environment, once per process
(and again only if the `RECS_*` environment changes, as it does between test-client stages), and
hands out the provider's four roles: `serving`, `events`, `workflow` and `loop`. The only place that
knows which providers there are.

The `local` provider reads the configuration when it is built; the `personalize` provider only
when a request names a filter or a command needs it, which keeps it off a Lambda's cold start.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.seam.roles import EventSink, Loop, Serving, Workflow
from chalicelib.settings import Settings, env_fingerprint

if TYPE_CHECKING:
    from chalicelib.config import ProjectConfig


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    serving: Serving
    events: EventSink
    workflow: Workflow
    loop: Loop

    @property
    def config(self) -> ProjectConfig:
        from chalicelib.config import load_config  # noqa: PLC0415 - cached by path

        return load_config(self.settings.config)


_lock = threading.Lock()
_cached: dict[tuple[tuple[str, str], ...], Runtime] = {}
_pinned: Runtime | None = None


def current() -> Runtime:
    if _pinned is not None:
        return _pinned
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
    if settings.provider == "local":
        # Imported here so that the `personalize` path never loads numpy or scipy.
        from chalicelib.config import load_config  # noqa: PLC0415
        from chalicelib.providers.local import LocalProvider  # noqa: PLC0415

        local = LocalProvider(settings, load_config(settings.config))
        return Runtime(settings, local.serving, local.events, local.workflow, local.loop)
    # Settings.provider is a Literal of the two.
    from chalicelib.providers.personalize import PersonalizeProvider  # noqa: PLC0415

    aws = PersonalizeProvider(settings)
    return Runtime(settings, aws.serving, aws.events, aws.workflow, aws.loop)


def pin() -> Runtime:
    """Build the runtime once and stop looking at the environment: for a server process whose
    environment never changes (the production server's workers), where reading it per request
    costs more than the request's own store queries."""
    global _pinned  # noqa: PLW0603
    runtime = current()
    _pinned = runtime
    return runtime


def reset() -> None:
    """Forget the built runtime (tests that change the data directory's contents use this)."""
    global _pinned  # noqa: PLW0603
    with _lock:
        _cached.clear()
        _pinned = None
