"""The `personalize` provider: Amazon Personalize through boto3. Imports no numpy or scipy."""
