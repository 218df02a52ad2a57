"""What becomes of an SQS message whose handling failed: wait and come back, or dead-letter with
the reason. Pure: the handlers read the delivery count (SQS's ``ApproximateReceiveCount``) and
apply the decision (``ChangeMessageVisibility``, or the DLQ through modelrun.ports.DeadLetters).

Two kinds of failure:
- **transient** (GitHub down or rate-limited, the OIDC issuer's keys out of reach): not the
  message's fault. It waits and comes back for as long as the report path outlasts GitHub (its
  state machine's retriers, about 2.6 hours): waits doubling from 5 s to 15 min, never sooner than
  GitHub asked (``Retry-After``, a primary limit's reset). The budget is counted in deliveries,
  so the queue's ``maxReceiveCount`` must exceed it (template.yaml: 18); on the last delivery the
  message is dead-lettered here, with the reason, before SQS would do it silently.
- **unexpected** (a bug, an AWS error): five deliveries at the queue's visibility timeout, as
  before, then dead-lettered here with the last error: no DLQ message without its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FIRST_WAIT_S = 5  # as the report path's outage retrier (IntervalSeconds 5, BackoffRate 2)
MAX_WAIT_S = 900  # its MaxDelaySeconds; the template's RedeliveryMaxWaitSeconds (shorter locally)
SQS_MAX_VISIBILITY_S = 43_200  # ChangeMessageVisibility's ceiling (12 hours)
UNEXPECTED_FAILURE_DELIVERIES = 5  # what every queue allowed before (maxReceiveCount 5)


@dataclass(frozen=True)
class Retry:
    """Fail the message back to SQS; it is delivered again after ``wait_s`` seconds (None: the
    queue's own visibility timeout)."""

    wait_s: int | None


@dataclass(frozen=True)
class DeadLetter:
    reason: str


@dataclass(frozen=True)
class Redelivery:
    """One queue's redelivery rules: its ``maxReceiveCount`` (the template sets both, one value)
    and the longest single wait."""

    max_receive_count: int
    max_wait_s: int = MAX_WAIT_S

    def wait_s(self, delivery: int, at_least_s: float | None = None) -> int:
        """The wait after failed delivery ``delivery`` (1-based): doubling from FIRST_WAIT_S,
        capped, and never shorter than ``at_least_s`` (what GitHub asked) below the cap."""
        backoff: int = FIRST_WAIT_S * 2 ** min(max(delivery - 1, 0), 20)
        wait: int = max(backoff, math.ceil(at_least_s or 0))
        return max(1, min(wait, self.max_wait_s, SQS_MAX_VISIBILITY_S))

    @property
    def budget_s(self) -> int:
        """How long a transient failure is waited out: every wait before the last delivery."""
        return sum(self.wait_s(n) for n in range(1, self.max_receive_count))

    def decide(
        self, delivery: int, cause: str, *, transient: bool, at_least_s: float | None = None, age_s: float = 0.0
    ) -> Retry | DeadLetter:
        """For a message that failed on its ``delivery``-th delivery with ``cause`` (one line);
        ``age_s``: how long ago it was first sent (said in the reason)."""
        if transient:
            if delivery >= self.max_receive_count:
                return DeadLetter(
                    f"{cause}: still failing after {delivery} deliveries over {_duration(age_s)}"
                    f" (the retry budget, about {_duration(self.budget_s)}); redrive it when it is fixed"
                )
            return Retry(self.wait_s(delivery, at_least_s))
        if delivery >= min(UNEXPECTED_FAILURE_DELIVERIES, self.max_receive_count):
            return DeadLetter(f"failed on each of {delivery} deliveries, lastly: {cause}")
        return Retry(None)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
