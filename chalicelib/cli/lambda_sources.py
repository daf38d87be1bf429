"""Lambda's event sources played on one machine for `run-aws`: the events queue and stream
polled and handed to `ingest_sqs` / `ingest_kinesis`, new objects under the import bucket's
`imports/` prefix handed to `import_s3` and under its `currents/` prefix (Braze Currents'
export, RECS_CURRENTS_BUCKET's default) to `ingest_currents`, each in the event shape Lambda
sends, with Lambda's handling of the outcome (a batch whose handler returned is deleted; one that
raised is left for redelivery after the queue's visibility timeout; an S3 event that raised is
logged, as Lambda's retries would be).

Polling rather than S3 notifications: the moto server keeps no notification configuration a
local process can subscribe to, and a listing every second finds a new file as soon.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from typing import Any

from chalicelib import aws
from chalicelib.handlers import currents, imports, ingest

log = logging.getLogger("recs.run-aws")


class Sources:
    def __init__(self, queue: str, stream: str, bucket: str, region: str) -> None:
        self.queue, self.stream, self.bucket, self.region = queue, stream, bucket, region
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.handled = {"sqs": 0, "kinesis": 0, "s3": 0, "currents": 0}

    def start(self) -> None:
        for name, loop in (("sqs", self._sqs), ("kinesis", self._kinesis), ("s3", self._s3)):
            thread = threading.Thread(target=self._guard, args=(name, loop), daemon=True)
            thread.start()
            self.threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)

    def _guard(self, name: str, loop: Callable[[], None]) -> None:
        while not self.stop.is_set():
            try:
                loop()
            except Exception:  # a handler's failure is Lambda's retry, not the player's end
                log.exception("%s event source", name)
                self.stop.wait(1.0)

    def _sqs(self) -> None:
        sqs = aws.client("sqs")
        url = sqs.get_queue_url(QueueName=self.queue)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        while not self.stop.is_set():
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                continue
            event = {"Records": [_sqs_record(m, arn, self.region) for m in messages]}
            try:
                ingest.handle_sqs(event)
            except ingest.RetryLater as exc:
                log.warning("ingest_sqs: %s", exc)  # left on the queue, as Lambda leaves them
                continue
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages)
                ],
            )
            self.handled["sqs"] += len(messages)

    def _kinesis(self) -> None:
        kinesis = aws.client("kinesis")
        described = kinesis.describe_stream(StreamName=self.stream)["StreamDescription"]
        arn = described["StreamARN"]
        iterators = {
            s["ShardId"]: kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for s in described["Shards"]
        }
        while not self.stop.is_set():
            for shard, iterator in list(iterators.items()):
                got = kinesis.get_records(ShardIterator=iterator, Limit=100)
                if got["Records"]:
                    records = [_kinesis_record(r, shard, arn, self.region) for r in got["Records"]]
                    ingest.handle_kinesis({"Records": records})
                    self.handled["kinesis"] += len(records)
                iterators[shard] = got["NextShardIterator"]
            self.stop.wait(0.5)

    def _s3(self) -> None:
        s3 = aws.client("s3")
        seen: set[tuple[str, str]] = set()
        while not self.stop.is_set():
            for prefix in ("imports/", "currents/"):
                pages = s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=prefix
                )
                for page in pages:
                    for obj in page.get("Contents", []):
                        mark = (obj["Key"], obj["ETag"])
                        if mark not in seen:
                            seen.add(mark)
                            self._object(
                                prefix, {"Records": [_s3_record(self.bucket, obj, self.region)]}
                            )
            self.stop.wait(1.0)

    def _object(self, prefix: str, event: dict[str, Any]) -> None:
        if prefix == "imports/":
            try:
                imports.handle_s3(event)
            except imports.ImportFailedError as exc:
                log.warning("import_s3: %s", exc)
            self.handled["s3"] += 1
            return
        try:
            currents.handle_s3(event)
        except currents.CurrentsRetryError as exc:
            log.warning("ingest_currents: %s", exc)
        self.handled["currents"] += 1


def _sqs_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def _kinesis_record(record: dict[str, Any], shard: str, arn: str, region: str) -> dict[str, Any]:
    sequence = record["SequenceNumber"]
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": sequence,
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard}:{sequence}",
        "eventName": "aws:kinesis:record",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def _s3_record(bucket: str, obj: dict[str, Any], region: str) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": obj["LastModified"].isoformat(),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": obj["Key"], "size": obj["Size"], "eTag": obj["ETag"].strip('"')},
        },
    }
