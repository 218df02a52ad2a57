"""UpdatePullRequest task of the report state machine (see modelrun.pull_request.update_pull_request).

GitHub's outages and rate limits surface as GitHubUnavailable / GitHubRateLimited: the state
machine's Retry matches those names and backs off.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import BaseModel, event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelrun import pull_request
from modelrun.config import UpdatePullRequestSettings

logger = Logger()
# Cold start: a variable the template does not set fails the init here, by name.
DEPS = pull_request.UpdateDeps.of(UpdatePullRequestSettings.from_environ())


class UpdateInput(BaseModel):
    run_id: str
    attempt: int


@logger.inject_lambda_context
@event_parser(model=UpdateInput)
def handler(event: UpdateInput, context: LambdaContext) -> dict[str, Any]:
    return pull_request.update_pull_request(DEPS, event.run_id)
