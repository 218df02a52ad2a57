"""CollectResults task of the report state machine (see modelrun.reporting.collect)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import BaseModel, event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelrun import reporting
from modelrun.config import CollectResultsSettings

logger = Logger()
# Cold start: a variable the template does not set fails the init here, by name.
DEPS = reporting.CollectDeps.of(CollectResultsSettings.from_environ())


class ReportInput(BaseModel):
    run_id: str
    status: str
    attempt: int


@logger.inject_lambda_context
@event_parser(model=ReportInput)
def handler(event: ReportInput, context: LambdaContext) -> dict[str, Any]:
    return reporting.collect(DEPS, event.run_id)
