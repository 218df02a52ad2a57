"""Submit function: SQS run requests -> Batch jobs (see modelrun.submission)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from modelrun import submission
from modelrun.adapters.aws import client
from modelrun.config import settings
from modelrun.contracts import MESSAGE, CleanupRequest

logger = Logger()
# The namespace is read at import; the template sets it, the default keeps imports order-proof.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "modelrun"))
processor = BatchProcessor(event_type=EventType.SQS)


def reject(record: SQSRecord, reason: str) -> None:
    """A message that can never succeed goes straight to the DLQ with its reason, not round again."""
    client("sqs").send_message(
        QueueUrl=settings().rejected_queue_url,
        MessageBody=record.body,
        MessageAttributes={
            "reason": {"DataType": "String", "StringValue": reason[:4000]},
            "source_message_id": {"DataType": "String", "StringValue": record.message_id},
        },
    )
    logger.error("run request rejected", extra={"reason": reason, "message_id": record.message_id})
    metrics.add_metric(name="RunRequestsRejected", unit=MetricUnit.Count, value=1)


def describe(error: ValidationError) -> str:
    parts = []
    for e in error.errors(include_url=False):
        field = ".".join(str(p) for p in e["loc"]) or "(message)"
        parts.append(f"{field}: {e['msg']}")
    return "invalid run request: " + "; ".join(parts)


def record_handler(record: SQSRecord) -> None:
    try:
        message = MESSAGE.validate_json(record.body)
    except ValidationError as error:
        reject(record, describe(error))
        return
    if isinstance(message, CleanupRequest):
        submission.cleanup(message)
        return
    try:
        submission.submit(message)
    except submission.Rejected as error:
        reject(record, str(error))
        return
    metrics.add_metric(name="RunsSubmitted", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submission.IDEMPOTENCY.register_lambda_context(context)
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
