"""The event-source Lambdas' edge (`ingest_sqs`, `ingest_kinesis`, `import_s3` in `app.py`): each
turns the raw Lambda event into records, hands them to the `personalize` provider's ingest or
import pipeline, and tells Lambda what to retry. They exist only on AWS."""
