"""Amazon Personalize, offline: its three APIs (control plane, runtime, events) served on the
embedded engine, so that an unmodified boto3 client pointed at it with
`AWS_ENDPOINT_URL_PERSONALIZE[_RUNTIME|_EVENTS]` works (`python -m chalicelib emulate`).

`model` checks requests against botocore's service model; `registry` keeps the resources and
their statuses on disk; `control` answers the control plane, `jobs` runs the asynchronous work
(imports from S3, training, campaigns, batch inference), `groups` holds each dataset group's store
and loaded models, `runtime` answers GetRecommendations, GetPersonalizedRanking and the events
API; `server` is the HTTP front (uvicorn) that speaks the wire protocols.
"""
