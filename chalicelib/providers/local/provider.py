"""The `local` provider: Personalize's concepts (datasets, solution versions, campaigns, filters)
on the embedded engine and one SQLite store, as the four roles of `chalicelib.seam.roles`."""

from __future__ import annotations

from chalicelib.config import ProjectConfig
from chalicelib.providers.local.events import LocalEvents
from chalicelib.providers.local.filtering import LocalFilters
from chalicelib.providers.local.loop import LocalLoop
from chalicelib.providers.local.serving import LocalServing
from chalicelib.providers.local.state import ServingState
from chalicelib.providers.local.store import LocalStore
from chalicelib.providers.local.workflow import LocalWorkflow
from chalicelib.settings import Settings


class LocalProvider:
    """One store and one served state shared by the four roles: a write through `events` or
    `workflow` reaches `serving` on its next request."""

    def __init__(self, settings: Settings, config: ProjectConfig) -> None:
        self.store = LocalStore(settings.data_dir)
        self.state = ServingState(self.store, settings, config)
        filters = LocalFilters(self.store, config, settings.config)
        self.serving = LocalServing(self.store, self.state, filters)
        self.events = LocalEvents(self.store, self.state)
        self.loop = LocalLoop(
            settings.data_dir,
            settings.served_ttl_days,
            settings.served_max_records,
            settings.currents_lease_seconds,
        )
        self.workflow = LocalWorkflow(
            settings, config, self.store, self.state, filters, loop=self.loop
        )
