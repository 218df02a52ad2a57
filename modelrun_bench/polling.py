"""The polling baseline: the old design's detection delay, modelled and extrapolated from the
measured poller, and the CI runner time each design holds per run."""

from __future__ import annotations

from typing import Any

# The old design's describe-jobs intervals: 60 s while the job starts, 5 min while it runs.
OLD_START_INTERVAL_S = 60.0


OLD_RUN_INTERVAL_S = 300.0


# The full AVM's whole container run (imports, data, training, ratio study, artifacts) on this
# machine, 2 threads: "≈18 s whole container run incl. imports" (README.md, "Measured").
AVM_RUN_SECONDS = 18.0


LONG_MODEL_SECONDS = 3600.0  # an illustration: a one-hour model


def expected_polling_delay(model_seconds: float, start_interval: float, run_interval: float) -> float:
    """Mean delay from a job's end to a poller noticing it, polling every ``start_interval``
    until it has seen the job RUNNING and every ``run_interval`` after that.

    The first poll after the job starts comes at a uniformly random phase within
    ``start_interval``: if the job has already ended it is seen then, otherwise the poller sees
    RUNNING and next looks ``run_interval`` later (and so on). For a model much longer than both
    intervals this tends to ``run_interval / 2``.
    """
    steps = 6000
    total = 0.0
    for i in range(steps):
        t = (i + 0.5) / steps * start_interval
        if t >= model_seconds:  # ended before the first look
            total += t - model_seconds
        elif model_seconds - t < run_interval:  # ended before the second look
            total += t + run_interval - model_seconds
        else:  # a later interval: run times aren't whole multiples of it, so a uniform phase
            total += run_interval / 2
    return total / steps


def polling_comparison(overhead: dict[str, Any], enqueue: dict[str, float], model_seconds: float) -> dict[str, Any]:
    ours = overhead["terminal_to_comment_s"]
    polled = overhead["poller"]["detection_delay_s"]
    interval = overhead["poller"]["interval_s"]
    # Measured delay per unit of interval (0.5 for an ideal poller; more with describe-jobs' cost).
    factor = polled["mean"] / interval if polled.get("n") else 0.5
    naive_running = factor * OLD_RUN_INTERVAL_S
    naive_starting = factor * OLD_START_INTERVAL_S
    rows = {}
    for label, duration in (("avm", model_seconds), ("one_hour_model", LONG_MODEL_SECONDS)):
        delay = expected_polling_delay(duration, OLD_START_INTERVAL_S, OLD_RUN_INTERVAL_S)
        rows[label] = {
            "model_seconds": duration,
            "expected_detection_delay_s": delay,
            "ratio_to_ours": delay / ours["median"] if ours.get("n") else None,
            # Both designs build and push the image first (same time, not measured here: no
            # Docker); the runner time below is what each holds the runner for after that.
            "ci_runner_s_ours": enqueue["median"],
            "ci_runner_s_polling": enqueue["median"] + duration + delay,
        }
    return {
        "old_intervals_s": {"starting": OLD_START_INTERVAL_S, "running": OLD_RUN_INTERVAL_S},
        "measured_delay_per_interval": factor,
        "naive_expected_delay_s": {"while_starting": naive_starting, "while_running": naive_running},
        "naive_ratio_to_ours_running": naive_running / ours["median"] if ours.get("n") else None,
        "model_duration_source": f"README.md 'Measured': full AVM, ≈{AVM_RUN_SECONDS:g} s whole container run",
        "queue_and_start_time": "not included (0 here; Fargate adds 30-90 s, held on the runner by polling only)",
        "by_model": rows,
    }
