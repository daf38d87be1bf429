"""The `personalize` provider: Amazon Personalize through boto3. Imports no numpy or scipy.

`PersonalizeProvider` holds its three roles (`serving`, `queue`, `workflow`); the Lambdas'
ingest and import pipelines (`ingest/`, `imports`) and the control plane (`setup`, `training`,
`batch`) live beside them."""

from chalicelib.providers.personalize.provider import PersonalizeProvider

__all__ = ["PersonalizeProvider"]
