"""SQS batches as Lambda gets them, with every failed message logged at ERROR.

Powertools' BatchProcessor reports a failed record to SQS (it comes back, and after
``maxReceiveCount`` goes to the DLQ) but logs the failure only at DEBUG: a message could be
retried five times and dead-lettered without a trace. Here each failure is logged with the
message id and its cause, so every DLQ message has a log line that says why. (A message that
can never succeed is dead-lettered at once instead, through modelrun.ports.DeadLetters.)
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor
from aws_lambda_powertools.utilities.batch.base import FailureResponse
from aws_lambda_powertools.utilities.batch.exceptions import ExceptionInfo

logger = Logger(child=True)


def message_id_of(record: Any) -> str | None:
    if isinstance(record, dict):
        return record.get("messageId")
    return getattr(record, "message_id", None) or getattr(record, "messageId", None)


class LoggedBatchProcessor(BatchProcessor):
    def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse:
        kind, error = exception[0], exception[1]
        logger.error(
            "message failed: SQS delivers it again, and after the queue's maxReceiveCount to its DLQ",
            extra={"message_id": message_id_of(record), "cause": f"{kind.__name__ if kind else '?'}: {error}"},
            exc_info=exception,  # type: ignore[arg-type]
        )
        return super().failure_handler(record, exception)
