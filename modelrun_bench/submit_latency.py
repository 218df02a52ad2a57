"""The submit handler alone, invoked directly with SQS events: batches of 1 and of 10."""

from __future__ import annotations

import hashlib
import statistics
import time
import uuid
from typing import Any

import boto3

from modelrun_bench.stats import summary
from modelrun_bench.workload import plan
from modelrun_local.runtime import REGION, LocalRuntime


def sqs_event(bodies: list[str], queue_arn: str) -> dict[str, Any]:
    """Shaped as ``sam local generate-event sqs receive-message`` makes it."""
    now_ms = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"bench-{uuid.uuid4().hex}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now_ms,
                    "SenderId": "123456789012",
                    "ApproximateFirstReceiveTimestamp": now_ms,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for body in bodies
        ]
    }


def submit_latency_phase(runtime: LocalRuntime, image: str, singles: int, batches: int) -> dict[str, Any]:
    """The submit handler alone: invoked directly; jobs finish quietly, so no events follow."""
    # The run-requests queue's mapping (the submit function also reads the operator queue, where
    # messages are believed to come from operators).
    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=runtime.outputs["RunRequestsQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    mapping = next(
        m for m in runtime.stack.event_sources if m.function == "SubmitFunction" and m.queue_arn == queue_arn
    )
    counter = iter(range(10**6))

    def bodies(n: int) -> list[str]:
        out = []
        for _ in range(n):
            i = next(counter)
            out.append(plan(runtime, image, 20_000 + i, 0, 6_000_000 + i).request.model_dump_json())
        return out

    def invoke(n: int) -> float:
        event = sqs_event(bodies(n), mapping.queue_arn)
        started = time.perf_counter()
        result, error = runtime.lambdas.invoke("SubmitFunction", event)
        elapsed = time.perf_counter() - started
        if error or (isinstance(result, dict) and result.get("batchItemFailures")):
            raise RuntimeError(f"submit handler failed in the latency bench: {result}")
        return elapsed

    before = runtime.executor.jobs_run
    with runtime.executor.quietly():
        invoke(1)  # warm: the first invocation in this phase is not counted
        one = [invoke(1) for _ in range(singles)]
        ten = [invoke(10) for _ in range(batches)]
    quiet = runtime.executor.jobs_run - before
    per_message_ten = [t / 10 for t in ten]
    return {
        "method": "Lambdas.invoke('SubmitFunction', event) in-process against moto's server, warm; "
        "each message a new PR (record, job definition reuse, SubmitJob, supersede check, 'queued' comment)",
        "batch_of_1_s": summary(one),
        "batch_of_10_invocation_s": summary(ten),
        "batch_of_10_per_message_s": summary(per_message_ten),
        "batch_of_10_requests_per_s": {
            "median": 10 / statistics.median(ten) if ten else 0.0,
            "overall": 10 * len(ten) / sum(ten) if ten else 0.0,
        },
        "jobs_submitted": quiet,
    }
