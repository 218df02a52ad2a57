"""A model's output folder, read and checked against the container contract (v2): what the
collect step and ``modelrun check`` both run, so a folder that passes the check is collected the
same way. Reading goes through a ``Reader`` (the results bucket's prefix, or a local folder), so
the bucket layout stays the caller's (issue 21's collected copies plug in here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelrun.domain import results as contract
from modelrun.domain.documents import MetricsDocument
from modelrun.domain.evaluation import Sales
from modelrun.errors import ContractError, TooLarge

# A file of the output by its name relative to the folder, read up to a byte limit: its bytes,
# None when it is not there; TooLarge past the limit.
Reader = Callable[[str, int], bytes | None]


@dataclass
class Output:
    """What a run's output folder holds, as far as it follows the contract; ``problems``: one
    clear sentence per thing that does not (the first refuses the results when ``sales`` is None)."""

    document: MetricsDocument | None = None
    sales: Sales | None = None
    images: dict[str, bytes] = field(default_factory=dict)
    params: bytes | None = None
    problems: list[str] = field(default_factory=list)


def read_output(read: Reader, run_id: str | None) -> Output:
    """metrics.json, the predictions it names, its plots and params file, each checked."""
    out = Output()
    try:
        raw = read("metrics.json", contract.MAX_METRICS_BYTES)
        if raw is None:
            out.problems.append("the run wrote no metrics.json")
            return out
        out.document = contract.parse_metrics(raw, run_id)
    except (ContractError, TooLarge) as error:
        out.problems.append(f"metrics.json does not follow the container contract: {error}")
        return out
    doc = out.document
    try:
        data = read(doc.predictions, contract.MAX_HOLDOUT_BYTES)
        if data is None:
            out.problems.append(f"metrics.json names the predictions {doc.predictions}, which the run did not write")
        else:
            out.sales = contract.parse_predictions(data, doc.predictions, doc.groups)
    except (ContractError, TooLarge) as error:
        out.problems.append(f"the predictions do not follow the container contract: {error}")
    for name in doc.plots[: contract.MAX_IMAGES]:
        try:
            image = read(name, contract.MAX_IMAGE_BYTES)
            if image is None:
                raise ContractError(f"plot {name} is missing")
            contract.check_image(name, image)
        except (ContractError, TooLarge) as error:
            out.problems.append(f"{error} (left out of the report)")
            continue
        out.images[Path(name).name] = image
    if doc.params is not None:
        try:
            out.params = read(doc.params, contract.MAX_PARAMS_BYTES)
            if out.params is None:
                out.problems.append(f"metrics.json names the params file {doc.params}, which the run did not write")
        except TooLarge:
            out.problems.append(f"the params file {doc.params} is over {contract.MAX_PARAMS_BYTES:,} bytes")
    return out
