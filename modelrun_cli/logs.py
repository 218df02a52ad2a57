"""A Batch job's log, as the CLI reads it from CloudWatch Logs.

``LOG_GROUP`` is where AWS Batch sends every job's output (its default group, which the template's
job role may write to); the local stack's Batch executor writes there too.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from modelrun.domain.naming import LOG_GROUP


class LogReader:
    """A CloudWatch log stream read forward, page by page, from where the last read stopped."""

    def __init__(self, logs: Any, stream: str, group: str = LOG_GROUP) -> None:
        self.logs = logs
        self.stream = stream
        self.group = group
        self.token: str | None = None
        self.lines = 0

    def read(self) -> list[str]:
        lines: list[str] = []
        while True:
            kwargs: dict[str, Any] = {"logGroupName": self.group, "logStreamName": self.stream, "startFromHead": True}
            if self.token:
                kwargs["nextToken"] = self.token
            try:
                page = self.logs.get_log_events(**kwargs)
            except ClientError as error:
                if error.response["Error"]["Code"] == "ResourceNotFoundException":
                    return lines  # the stream doesn't exist yet
                raise
            lines += [str(e["message"]).rstrip("\n") for e in page.get("events", [])]
            token = page.get("nextForwardToken")
            if not page.get("events") or token == self.token:
                self.token = token or self.token
                break
            self.token = token
        self.lines += len(lines)
        return lines
