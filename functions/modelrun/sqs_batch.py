"""SQS batches as Lambda gets them, with every failed message logged at ERROR.

Powertools' BatchProcessor reports a failed record to SQS (it comes back, and after
``maxReceiveCount`` goes to the DLQ) but logs the failure only at DEBUG: a message could be
retried five times and dead-lettered without a trace. Here each failure is logged with the
message id and its cause. A message that can never succeed is dead-lettered at once, through
modelrun.ports.DeadLetters, with its reason; one that keeps failing is dead-lettered the same way
on its last delivery (``fail_or_dead_letter``), so no DLQ message lacks its reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor
from aws_lambda_powertools.utilities.batch.base import FailureResponse
from aws_lambda_powertools.utilities.batch.exceptions import ExceptionInfo
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from modelrun.domain.redelivery import DeadLetter, Redelivery
from modelrun.errors import HeldBack
from modelrun.ports import MessageDelays

logger = Logger(child=True)


def message_id_of(record: Any) -> str | None:
    if isinstance(record, dict):
        return record.get("messageId")
    return getattr(record, "message_id", None) or getattr(record, "messageId", None)


class LoggedBatchProcessor(BatchProcessor):
    def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse:
        kind, error = exception[0], exception[1]
        if isinstance(error, HeldBack):  # expected while GitHub is down: no stack trace per wait
            logger.warning("message held back", extra={"message_id": message_id_of(record), "cause": str(error)})
            return super().failure_handler(record, exception)
        logger.error(
            "message failed: SQS delivers it again, and after the queue's maxReceiveCount to its DLQ",
            extra={"message_id": message_id_of(record), "cause": f"{kind.__name__ if kind else '?'}: {error}"},
            exc_info=exception,  # type: ignore[arg-type]
        )
        return super().failure_handler(record, exception)


def delivery(record: SQSRecord) -> int:
    """Which delivery of the message this is (1 the first): SQS's ApproximateReceiveCount."""
    return int(record.attributes.approximate_receive_count or 1)


def sent_seconds_ago(record: SQSRecord) -> float:
    return max(0.0, time.time() - int(record.attributes.sent_timestamp) / 1000)


def cause(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def fail_or_dead_letter(
    record: SQSRecord,
    error: Exception,
    policy: Redelivery,
    reject: Callable[[SQSRecord, str], None],
    delays: MessageDelays | None = None,
    *,
    transient: bool = False,
    at_least_s: float | None = None,
) -> None:
    """After ``error`` failed the message: hold it back and raise (SQS delivers it again), or on
    its last delivery dead-letter it with the reason (modelrun.domain.redelivery)."""
    decision = policy.decide(
        delivery(record), cause(error), transient=transient, at_least_s=at_least_s, age_s=sent_seconds_ago(record)
    )
    if isinstance(decision, DeadLetter):
        reject(record, decision.reason)
        return
    if decision.wait_s is not None and delays is not None:
        delays.delay(record, decision.wait_s)
        raise HeldBack(
            f"delivered again in {decision.wait_s} s (delivery {delivery(record)}): {cause(error)}"
        ) from error
    raise error
