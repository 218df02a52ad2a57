"""Track function: Batch job state changes (via SQS) -> run status (see modelrun.tracking)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelrun import tracking
from modelrun.events import JobEventRecord

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS, model=JobEventRecord)


def record_handler(record: JobEventRecord) -> str:
    return tracking.track(record.body.detail)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
