"""Benchmarks of the pipeline on the embedded local stack: ``python -m modelrun_bench``.

What it measures, and how (all times are ``time.monotonic()``, one clock for the machine: this
process hosts the pollers, the handlers and the local GitHub; the AWS process moto's server and
the Batch executor, which reports each status it sets with its time):

- **Overhead per run** (runs one after another, a no-op model: ``python -c`` writes a valid
  ``metrics.json`` by one HTTP PUT, no imports beyond the standard library):
  (a) *enqueue -> SubmitJob returned*: from just before ``sqs.send_message`` to the moment the
  local AWS's SubmitJob accepts the job (its executor reports each status it sets with its time,
  SUBMITTED first: no patching of the handler);
  (b) *terminal state -> PR comment written*: from the moment the executor sets the job's
  terminal status and emits the Batch event (the executor's report of that instant) to
  the moment the local GitHub has applied the comment write (its request log times each answer), and
  to the check run's completion (the commit status, on a token: the report's last GitHub call).
- **Polling baseline, side by side**: a thread calls ``batch.describe_jobs`` for every submitted
  job at a scaled-down interval and notes when it first sees the terminal status; its detection
  delay is measured from the same terminal instant as ours. Extrapolated to the old design's
  intervals (60 s while starting, 5 min while running) and turned into CI runner time per run.
- **Throughput**: N run requests over M PRs (a fraction re-sent, to exercise dedupe), sent with
  ``send_message_batch``; wall time, Batch jobs (``list_jobs`` over both queues, every status),
  run records, GitHub requests per run. Exits non-zero when a run is lost or duplicated.
- **Submit handler latency** (issue 3): the real handler invoked directly with SQS events shaped
  as ``sam local generate-event sqs receive-message`` makes them, batches of 1 and of 10; Batch
  jobs are finished quietly meanwhile (moto's own behaviour) so nothing else competes for the CPU.
- **Cold start**: each handler module's import from its own built package (``sam build``: the
  package, its layers and the runtime's boto3 alone on sys.path, a fresh interpreter each time)
  against a bare ``import boto3``, and each package's and layer's size.
- **Cold path**: the overhead's two paths again with the functions cold (each function's
  environments stopped first, so its next invocation starts a fresh worker process, as a Lambda
  cold start): terminal state -> PR comment with Track, CollectResults and UpdatePullRequest cold,
  and enqueue -> SubmitJob returned with Submit cold; each cold environment's init seconds.

Figures go to ``bench/results.json`` and the table to ``bench/RESULTS.md`` (``--out`` elsewhere).
One module per phase; ``probes`` holds what they measure with, ``report`` writes the table.
"""
