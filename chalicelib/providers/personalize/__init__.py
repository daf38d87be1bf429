"""The `personalize` provider: Amazon Personalize through boto3. Imports no numpy or scipy."""

from chalicelib.providers.personalize.provider import PersonalizeProvider

__all__ = ["PersonalizeProvider"]
