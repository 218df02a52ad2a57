"""The local stack's SQS poller hands the functions records of the shape Lambda documents
(tests/fixtures/sqs). It imports the local runtime, and with it moto's server and Step
Functions parser: seconds of imports, which is why it stands apart from the domain tests."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from modelrun_local.runtime import SqsPoller

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_sqs_records_from_the_local_poller_have_lambdas_shape() -> None:
    documented = json.loads((FIXTURES / "sqs" / "receive-message.json").read_text())["Records"][0]
    poller = SimpleNamespace(mapping=SimpleNamespace(queue_arn=documented["eventSourceARN"]))
    message = {
        "MessageId": documented["messageId"],
        "ReceiptHandle": documented["receiptHandle"],
        "Body": documented["body"],
        "MD5OfBody": documented["md5OfBody"],
        "Attributes": documented["attributes"],
    }
    produced = SqsPoller.record(poller, message)  # type: ignore[arg-type]
    assert set(produced) == set(documented)
    assert produced == documented
