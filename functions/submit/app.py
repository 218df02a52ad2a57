"""Submit function: SQS run requests -> Batch jobs (see modelrun.submission)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from modelrun import errors, submission, verification
from modelrun.adapters.aws import SqsDeadLetters, SqsVisibility
from modelrun.config import SubmitSettings
from modelrun.contracts import MESSAGE, OPERATOR_MESSAGE, CleanupRequest, RerunRequest
from modelrun.domain.redelivery import Redelivery
from modelrun.errors import (
    Duplicate,
    GitHubBadCredentials,
    GitHubRateLimited,
    GitHubRejected,
    GitHubUnavailable,
    IssuerUnavailable,
    Rejected,
    Unverified,
)
from modelrun.ports import DeadLetters, MessageDelays
from modelrun.sqs_batch import LoggedBatchProcessor, fail_or_dead_letter

logger = Logger()
# The namespace is read at import; the template sets it, the default keeps imports order-proof.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "modelrun"))
processor = LoggedBatchProcessor(event_type=EventType.SQS)  # each failure logged at ERROR

# Cold start: a variable the template does not set fails the init here, by name.
SETTINGS = SubmitSettings.from_environ()
DEPS = submission.SubmitDeps.of(SETTINGS)
# Each queue's own DLQ: `modelrun redrive` returns a dead letter to the queue it came from, so a
# message that entered through the run-requests queue never gains operator meaning (issue 21).
REJECTED: DeadLetters = SqsDeadLetters(SETTINGS.rejected_queue_url)
OPERATOR_REJECTED: DeadLetters = SqsDeadLetters(SETTINGS.operator_rejected_queue_url)
DELAYS: MessageDelays = SqsVisibility(
    {
        SETTINGS.run_requests_queue_arn: SETTINGS.run_requests_queue_url,
        SETTINGS.operator_queue_arn: SETTINGS.operator_queue_url,
    }
)
REDELIVERY = Redelivery(SETTINGS.max_receive_count, SETTINGS.redelivery_max_wait_seconds)
# Not the request's fault: GitHub or the OIDC issuer is down or rate-limited. Waited out.
TRANSIENT = (GitHubUnavailable, GitHubRateLimited, IssuerUnavailable)


def sent_at(record: SQSRecord) -> float:
    """When SQS received the message, in seconds: never a time the message itself claims (for a
    redriven one, verification looks up when this function first received the same body)."""
    return int(record.attributes.sent_timestamp) / 1000


def receipt(record: SQSRecord) -> verification.Receipt:
    return verification.Receipt(record.message_id, hashlib.sha256(record.body.encode()).hexdigest())


def _from_operator(record: SQSRecord) -> bool:
    return record.event_source_arn == SETTINGS.operator_queue_arn


def _failed(record: SQSRecord) -> None:
    """The message did not go through: its claim is let go (its redelivery or redrive may count),
    and when this function received its body is remembered (a redrive is judged by that time)."""
    DEPS.gate.release(record.message_id)
    DEPS.gate.remember_sent(receipt(record).digest, sent_at(record))


def reject(record: SQSRecord, reason: str) -> None:
    """A message that can never succeed goes straight to its queue's DLQ with its reason, not
    round again. The body goes as it came (a redrive re-verifies it, token included)."""
    _failed(record)
    (OPERATOR_REJECTED if _from_operator(record) else REJECTED).dead_letter(record, reason)
    logger.error("run request rejected", extra={"reason": reason, "message_id": record.message_id})
    metrics.add_metric(name="RunRequestsRejected", unit=MetricUnit.Count, value=1)


def describe(error: ValidationError) -> str:
    return "invalid run request: " + errors.describe(error)


def record_handler(record: SQSRecord) -> None:
    try:
        handle(record)
    except Exception as error:
        # Waited out if transient, else retried as SQS does; dead-lettered with the reason on
        # the last delivery either way.
        transient = isinstance(error, TRANSIENT)
        if transient:
            metrics.add_metric(name="RunRequestsHeldBack", unit=MetricUnit.Count, value=1)
        wait = error.retry_after if isinstance(error, GitHubRateLimited) else None
        fail_or_dead_letter(record, error, REDELIVERY, reject, DELAYS, transient=transient, at_least_s=wait)


def handle(record: SQSRecord) -> None:
    operator = _from_operator(record)
    try:
        message = (OPERATOR_MESSAGE if operator else MESSAGE).validate_json(record.body)
    except ValidationError as error:
        reject(record, describe(error))
        return
    try:
        if isinstance(message, RerunRequest):
            # IAM decided who may send to the operator queue; SenderId says who did.
            submission.rerun(DEPS, message, operator_id=record.attributes.sender_id)
        elif isinstance(message, CleanupRequest):
            verification.verify_cleanup(DEPS, message, sent_at(record), receipt(record))
            submission.cleanup(DEPS, message)
        else:
            verified = verification.verify_run(DEPS, message, sent_at(record), receipt(record))
            submission.submit(DEPS, message, verified)
            metrics.add_metric(name="RunsSubmitted", unit=MetricUnit.Count, value=1)
    except Duplicate as error:
        # Another copy of this workflow run's request counts already: no GitHub call, no run.
        logger.info("duplicate run request dropped", extra={"reason": str(error), "message_id": record.message_id})
        metrics.add_metric(name="RunRequestsDuplicate", unit=MetricUnit.Count, value=1)
    except Unverified as error:
        reject(record, f"unverified: {error}")
        metrics.add_metric(name="RunRequestsUnverified", unit=MetricUnit.Count, value=1)
    except Rejected as error:
        reject(record, str(error))
    except GitHubBadCredentials as error:
        # An expired or invalid App key, a revoked token: no retry mends it. The DLQ's alarm
        # alerts the team; the metric says which kind of dead letter it is.
        reject(record, f"GitHub credentials broken, fix the secret and redrive: {error}")
        metrics.add_metric(name="GitHubCredentialsBroken", unit=MetricUnit.Count, value=1)
    except GitHubRejected as error:
        reject(record, f"GitHub refused the verification lookup: {error}")
    except Exception:
        _failed(record)  # held back or retried: its claim let go, its first receipt remembered
        raise


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submission.IDEMPOTENCY.register_lambda_context(context)
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
