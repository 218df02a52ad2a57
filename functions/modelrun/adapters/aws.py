"""Small adapters over boto3: the runs table, the results bucket, CloudWatch Logs, the DLQs and
the report state machine (Batch: adapters/batch.py). Each implements its modelrun.ports Protocol.

Clients come from boto3's defaults, so the endpoint comes from ``AWS_ENDPOINT_URL`` when set
(the local runtime sets it) and from the AWS defaults otherwise: only endpoints differ. Each
adapter makes its client on first use (one per service and process): a handler builds all its
adapters at cold start, and an invocation pays only for the clients it uses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from decimal import Decimal
from functools import cache, cached_property
from typing import Any
from urllib.parse import quote, urlparse

import boto3
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.config import Config
from botocore.exceptions import ClientError

from modelrun.domain import naming
from modelrun.domain.run import RunRecord, utcnow
from modelrun.domain.status import RunStatus
from modelrun.errors import StaleWrite, TooLarge, Unreadable

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]


def _to_dynamo(value: Any) -> Any:
    return json.loads(json.dumps(value), parse_float=Decimal)


# Nested documents (the report, its summary, the request) are stored as JSON text: nothing
# filters on what is inside them, and one string is far cheaper to write and read back than a
# map of maps whose every value is typed on the wire.
_DOCUMENTS = frozenset({"summary", "report", "request", "attempts"})


def _document(value: Any) -> str:
    # Callers pass documents already dumped (RunRecord.item(), the documents' .stored()).
    return json.dumps(value, separators=(",", ":"))


def _to_item(fields: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = _to_dynamo(
        {k: _document(v) if k in _DOCUMENTS and v is not None else v for k, v in fields.items()}
    )
    return item


def _to_record(item: dict[str, Any]) -> RunRecord:
    plain = _from_dynamo(item)
    for key in _DOCUMENTS & plain.keys():
        if isinstance(plain[key], str):  # records written before documents were text are maps
            plain[key] = json.loads(plain[key])
    return RunRecord.model_validate(plain)


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


class RunsTable:
    """Run records, keyed by run id; GSIs by PR and by branch."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @cached_property
    def table(self) -> Any:
        return boto3.resource("dynamodb", config=_CONFIG).Table(self.table_name)

    def create(self, record: RunRecord) -> bool:
        """Write a new record; False when the run id exists already (a duplicate delivery)."""
        try:
            self.table.put_item(Item=_to_item(record.item()), ConditionExpression="attribute_not_exists(run_id)")
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, run_id: str) -> RunRecord | None:
        item = self.table.get_item(Key={"run_id": run_id}, ConsistentRead=True).get("Item")
        return _to_record(item) if item else None

    def update(self, before: RunRecord, **changes: Any) -> RunRecord:
        """Optimistic write: applies only if status and attempt are still what ``before`` saw."""
        changes["updated_at"] = utcnow()
        after = before.model_copy(update=changes)
        names = {f"#{k}": k for k in changes}
        values = {f":{k}": v for k, v in _to_item(after.item()).items() if k in changes}
        sets = [f"#{k} = :{k}" for k in changes if f":{k}" in values]
        removes = [f"#{k}" for k in changes if f":{k}" not in values]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        names.update({"#status_": "status", "#attempt_": "batch_attempt"})
        values.update({":status_before": before.status.value, ":attempt_before": before.batch_attempt})
        try:
            self.table.update_item(
                Key={"run_id": before.run_id},
                UpdateExpression=expression,
                ConditionExpression="#status_ = :status_before AND #attempt_ = :attempt_before",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleWrite(before.run_id) from error
            raise
        return after

    def set_fields(self, run_id: str, **fields: Any) -> None:
        """Unconditional write of fields that don't take part in the status order."""
        fields["updated_at"] = utcnow()
        self.table.update_item(
            Key={"run_id": run_id},
            UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
            ConditionExpression="attribute_exists(run_id)",
            ExpressionAttributeNames={f"#{k}": k for k in fields},
            ExpressionAttributeValues={f":{k}": v for k, v in _to_item(fields).items()},
        )

    def _query(self, index: str, key: str, value: str, newest_first: bool = True) -> list[RunRecord]:
        records: list[RunRecord] = []
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": f"{key} = :v",
            "ExpressionAttributeValues": {":v": value},
            "ScanIndexForward": not newest_first,
        }
        while True:
            page = self.table.query(**kwargs)
            records += [_to_record(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return records
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def runs_of_pr(self, pr_key: str) -> list[RunRecord]:
        """Newest first."""
        return self._query("by_pr", "pr_key", pr_key)

    def baselines(self, branch_key: str) -> list[RunRecord]:
        """The default branch's succeeded, verified runs with results, newest first."""
        return [
            r
            for r in self._query("by_branch", "branch_key", branch_key)
            if r.status is RunStatus.SUCCEEDED and r.summary and r.baseline
        ]

    def scan(self) -> list[RunRecord]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"FilterExpression": "attribute_exists(job_queue)"}
        while True:
            page = self.table.scan(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [_to_record(i) for i in items]

    # What was last published to GitHub for one target (a PR's comment, a commit's status), in
    # one item per target: the version it reflects, its digest, the comment id, and a lease that
    # lets one writer at a time talk to GitHub for that target (see modelrun.publishing).
    def publication(self, key: str) -> dict[str, Any]:
        item = self.table.get_item(Key={"run_id": key}, ConsistentRead=True).get("Item")
        return _from_dynamo(item) if item else {}

    def _conditional(self, key: str, **kwargs: Any) -> bool:
        try:
            self.table.update_item(Key={"run_id": key}, **kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def acquire(self, key: str, owner: str, lease_seconds: float) -> bool:
        """Take the target's lease if nobody holds it (or the holder's lease ran out), or extend our own."""
        now = time.time()
        return self._conditional(
            key,
            UpdateExpression="SET lease_owner = :owner, lease_until = :until",
            ConditionExpression="attribute_not_exists(lease_owner) OR lease_until < :now OR lease_owner = :owner",
            ExpressionAttributeValues={
                ":owner": owner,
                ":until": Decimal(str(now + lease_seconds)),
                ":now": Decimal(str(now)),
            },
        )

    def want(self, key: str, version: str) -> bool:
        """Tell the lease holder that state of ``version`` waits to be shown: it renders again
        before it lets go. False when nobody holds the lease any more (take it instead)."""
        return self._conditional(
            key,
            UpdateExpression="SET wanted = :v",
            ConditionExpression="attribute_exists(lease_owner) AND lease_until >= :now "
            "AND (attribute_not_exists(wanted) OR wanted < :v)",
            ExpressionAttributeValues={":v": version, ":now": Decimal(str(time.time()))},
        ) or self._wanted_already(key, version)

    def _wanted_already(self, key: str, version: str) -> bool:
        item = self.publication(key)
        held = bool(item.get("lease_owner")) and float(item.get("lease_until", 0)) >= time.time()
        return held and str(item.get("wanted", "")) >= version

    def publish(self, key: str, owner: str, version: str, **fields: Any) -> bool:
        """Record what was published and let go of the lease, unless a newer state was asked for
        meanwhile (``want``) or the lease was lost: then False, and the holder renders again."""
        fields |= {"version": version, "updated_at": utcnow()}
        return self._conditional(
            key,
            UpdateExpression="SET "
            + ", ".join(f"#{k} = :{k}" for k in fields)
            + " REMOVE lease_owner, lease_until, wanted",
            ConditionExpression="lease_owner = :owner AND (attribute_not_exists(wanted) OR wanted <= :version)",
            ExpressionAttributeNames={f"#{k}": k for k in fields},
            ExpressionAttributeValues={":owner": owner, **{f":{k}": v for k, v in _to_dynamo(fields).items()}},
        )

    def release(self, key: str, owner: str) -> None:
        """Let go of the lease without publishing (the write failed); ``wanted`` stays for the next writer."""
        self._conditional(
            key,
            UpdateExpression="REMOVE lease_owner, lease_until",
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeValues={":owner": owner},
        )


# What S3 answers for an object that exists but cannot be read as it is stored: archived
# (StorageClass GLACIER/DEEP_ARCHIVE), or encrypted with a customer's key (SSE-C). A job can
# write either: the file is then unavailable, and the report says so.
_UNREADABLE = frozenset({"InvalidObjectState", "ObjectNotInActiveTierError", "InvalidRequest"})


def _unreadable(error: ClientError, key: str) -> Unreadable | None:
    code = error.response["Error"]["Code"]
    return Unreadable(f"{key} cannot be read as stored ({code})") if code in _UNREADABLE else None


class RequestGate:
    """The submit path's gate, in the idempotency table (its key ``id``, its TTL ``expiration``),
    beside Powertools' items (theirs are named after the function, ours start with ``gate#``):
    which message counts for a token's claims, how many requests a repository sent this hour,
    and when the submit function first received a message body."""

    _KEEP_SECONDS = 14 * 24 * 3600  # as long as a dead letter is kept

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self._claimed: dict[str, list[str]] = {}  # owner -> keys claimed by this container

    @cached_property
    def table(self) -> Any:
        return boto3.resource("dynamodb", config=_CONFIG).Table(self.table_name)

    def _expiry(self, seconds: float) -> int:
        return int(time.time() + seconds)

    def claim(self, key: str, owner: str) -> bool:
        """True if ``owner`` (an SQS message id) is the one message that counts for ``key``."""
        try:
            self.table.put_item(
                Item={"id": f"gate#{key}", "owner": owner, "expiration": self._expiry(self._KEEP_SECONDS)},
                ConditionExpression="attribute_not_exists(id) OR #owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": owner},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        self._claimed.setdefault(owner, []).append(key)
        return True

    def release(self, owner: str) -> None:
        """Let go of what ``owner`` claimed (it failed): a redelivery or redrive may count again."""
        for key in self._claimed.pop(owner, []):
            self._delete(key, owner)

    def _delete(self, key: str, owner: str) -> None:
        try:
            self.table.delete_item(
                Key={"id": f"gate#{key}"},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": owner},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def count(self, key: str, window_seconds: int) -> int:
        """Add one to this window's counter for ``key``; the count so far, this one included."""
        window = int(time.time()) // window_seconds
        answer = self.table.update_item(
            Key={"id": f"gate#count#{key}#{window}"},
            UpdateExpression="ADD #n :one SET expiration = :expiry",
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={":one": 1, ":expiry": self._expiry(2 * window_seconds)},
            ReturnValues="UPDATED_NEW",
        )
        return int(answer["Attributes"]["n"])

    def remember_sent(self, digest: str, sent_at: float) -> None:
        """When the submit function first received this exact body (its token inside)."""
        try:
            self.table.put_item(
                Item={
                    "id": f"gate#sent#{digest}",
                    "sent_at": Decimal(str(sent_at)),
                    "expiration": self._expiry(self._KEEP_SECONDS),
                },
                ConditionExpression="attribute_not_exists(id) OR sent_at > :sent",
                ExpressionAttributeValues={":sent": Decimal(str(sent_at))},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def first_sent(self, digest: str) -> float | None:
        item = self.table.get_item(Key={"id": f"gate#sent#{digest}"}, ConsistentRead=True).get("Item")
        return float(item["sent_at"]) if item else None


class Results:
    """The results bucket: what the model wrote and the reports modelrun writes."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    @property
    def s3(self) -> Any:
        return client("s3")

    @staticmethod
    def split(uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        return parsed.netloc, parsed.path.lstrip("/")

    def read_capped(self, uri: str, limit: int) -> bytes | None:
        """The object's bytes, None if absent; a larger object raises ``TooLarge`` unread."""
        bucket, key = self.split(uri)
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            if unreadable := _unreadable(error, key):
                raise unreadable from error
            raise
        body = response["Body"]
        if int(response.get("ContentLength", 0)) > limit:
            body.close()
            raise TooLarge(f"{key} is {response['ContentLength']} bytes (at most {limit})")
        data: bytes = body.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"{key} is over {limit} bytes")
        return data

    def sizes(self, prefix_uri: str) -> dict[str, int]:
        """Key -> size of every object under the prefix."""
        bucket, prefix = self.split(prefix_uri)
        sizes: dict[str, int] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            sizes |= {o["Key"]: int(o["Size"]) for o in page.get("Contents", [])}
        return sizes

    def put(self, key: str, body: bytes, content_type: str) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        return f"s3://{self.bucket}/{key}"

    def copy(self, source_uri: str, key: str) -> None:
        """A server-side copy into this bucket (the bytes never pass through the function), in
        the standard storage class and the bucket's own encryption, whatever the source's."""
        bucket, source = self.split(source_uri)
        try:
            self.s3.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": source},
                StorageClass="STANDARD",
                MetadataDirective="REPLACE",
            )
        except ClientError as error:
            if unreadable := _unreadable(error, source):
                raise unreadable from error
            raise


def log_url(region: str, log_stream: str, log_group: str = naming.LOG_GROUP) -> str:
    """The CloudWatch console's link to one log stream (the console double-encodes names)."""

    def enc(text: str) -> str:
        return quote(quote(text, safe=""), safe="").replace("%", "$")

    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{enc(log_group)}/log-events/{enc(log_stream)}"
    )


class BatchLogs:
    """The jobs' CloudWatch Logs (Batch's awslogs driver writes each job's stream there)."""

    def __init__(self, log_group: str = naming.LOG_GROUP) -> None:
        self.log_group = log_group

    def tail(self, log_stream: str, lines: int) -> list[str]:
        """The stream's last ``lines`` lines; none if it cannot be read (the report goes on without)."""
        try:
            events = client("logs").get_log_events(
                logGroupName=self.log_group, logStreamName=log_stream, limit=lines, startFromHead=False
            )["events"]
        except ClientError:
            return []
        return [str(e["message"]).rstrip("\n") for e in events]


class SqsDeadLetters:
    """A DLQ written to directly: a message that can never succeed goes there at once with its
    reason (``modelrun redrive`` shows it), not round again until maxReceiveCount."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def dead_letter(self, record: SQSRecord, reason: str, extra: Mapping[str, Mapping[str, str]] | None = None) -> None:
        client("sqs").send_message(
            QueueUrl=self.queue_url,
            MessageBody=record.body,
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason[:4000]},
                "source_message_id": {"DataType": "String", "StringValue": record.message_id},
                **{k: dict(v) for k, v in (extra or {}).items()},
            },
        )


class SqsVisibility:
    """Holds a failed message back (ChangeMessageVisibility) before SQS delivers it again: a
    message waiting out an outage comes back when a retry is worth it, not every visibility
    timeout. The queue's URL by its ARN (the event names the queue by ARN)."""

    def __init__(self, queue_urls: Mapping[str, str]) -> None:
        self.queue_urls = dict(queue_urls)

    def delay(self, record: SQSRecord, seconds: int) -> None:
        client("sqs").change_message_visibility(
            QueueUrl=self.queue_urls[record.event_source_arn],
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=seconds,
        )


class StepFunctionsReports:
    """The report state machine, started once per run attempt under a derived name."""

    def __init__(self, state_machine_arn: str) -> None:
        self.state_machine_arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        try:
            client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return False
        return True
