"""Track function: Batch job state changes (via SQS) -> run status (see modelrun.tracking)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from modelrun import tracking
from modelrun.adapters.aws import SqsDeadLetters
from modelrun.config import TrackSettings
from modelrun.domain.redelivery import Redelivery
from modelrun.errors import describe
from modelrun.events import JobEventRecord
from modelrun.ports import DeadLetters
from modelrun.sqs_batch import LoggedBatchProcessor, fail_or_dead_letter

logger = Logger()
# Parsed here, not by the processor: a malformed event can never succeed, so it goes to the
# DLQ at once with its reason instead of five deliveries and a DEBUG line.
processor = LoggedBatchProcessor(event_type=EventType.SQS)

# Cold start: a variable the template does not set fails the init here, by name.
SETTINGS = TrackSettings.from_environ()
DEPS = tracking.TrackDeps.of(SETTINGS)
REJECTED: DeadLetters = SqsDeadLetters(SETTINGS.rejected_events_queue_url)
REDELIVERY = Redelivery(SETTINGS.max_receive_count)


def reject(record: SQSRecord, reason: str) -> None:
    REJECTED.dead_letter(record, reason)
    logger.error("job event rejected", extra={"reason": reason, "message_id": record.message_id})


def record_handler(record: SQSRecord) -> str:
    try:
        parsed = JobEventRecord.model_validate(record.raw_event)
    except ValidationError as error:
        reject(record, f"not a Batch Job State Change event: {describe(error)}")
        return "rejected"
    try:
        return tracking.track(DEPS, parsed.body.detail)
    except Exception as error:
        # Retried as SQS does; on the last delivery dead-lettered here with the error as reason.
        fail_or_dead_letter(record, error, REDELIVERY, reject)
        return "rejected"


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
