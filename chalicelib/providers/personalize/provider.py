"""The `personalize` provider: Amazon Personalize through boto3, as the four roles of
`chalicelib.seam.roles`. Building it calls nothing and loads no configuration: a cold Lambda
pays only for what its first request uses."""

from __future__ import annotations

from chalicelib.providers.personalize.loop import DynamoLoop
from chalicelib.providers.personalize.queue import QueueEvents
from chalicelib.providers.personalize.serving import PersonalizeServing
from chalicelib.providers.personalize.workflow import PersonalizeWorkflow
from chalicelib.settings import Settings


class PersonalizeProvider:
    def __init__(self, settings: Settings) -> None:
        self.serving = PersonalizeServing(settings)
        # Items written through the queue's table are re-read by the serving catalogue.
        self.events = QueueEvents(settings, self.serving.catalogue())
        self.workflow = PersonalizeWorkflow(settings)
        self.loop = DynamoLoop(settings)
