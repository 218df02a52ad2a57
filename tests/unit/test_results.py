"""metrics.json, the holdout predictions and the params file are the model's (the PR author's)
output: parse_metrics and parse_holdout accept the contract only."""

from __future__ import annotations

import copy
import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from modelrun.domain import results
from modelrun.domain.documents import MetricsDocument
from modelrun.domain.results import MAX_METRICS_BYTES, check_image, params_diff, parse_holdout, parse_metrics
from modelrun.errors import ContractError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "fixtures" / "metrics" / "avm-sample.json"  # the sample model's real output
RUN_ID = "sample-run-1"


def sample() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SAMPLE.read_text())
    return document


def raw(document: Any) -> bytes:
    return json.dumps(document).encode()


def rejected(data: bytes, run_id: str = RUN_ID) -> str:
    with pytest.raises(ContractError) as error:
        parse_metrics(data, run_id)
    reason = str(error.value)
    assert reason and "\n" not in reason and len(reason) < 500
    return reason


def test_the_sample_models_output_is_accepted() -> None:
    document = parse_metrics(SAMPLE.read_bytes(), RUN_ID)
    assert document == MetricsDocument.model_validate(sample())
    assert document.run_id == RUN_ID and document.metrics.rmse and document.metrics.rmse > 0
    # What the report shows is read from the document as the model wrote it.
    assert document.ratio_study.prd and document.ratio_study.prd.passed is False
    assert document.ratio_study.prd.range == (0.98, 1.03)
    assert [a.area for a in document.by_area] == [a["area"] for a in sample()["by_area"]]
    assert document.artifacts.holdout is None  # the fixture predates the holdout artifact


def test_the_published_schema_is_the_one_enforced() -> None:
    assert results.METRICS_SCHEMA.is_file()
    ours = json.loads(results.METRICS_SCHEMA.read_text())
    assert ours == json.loads((ROOT / "model_container" / "metrics.schema.json").read_text())
    assert results.metrics_validator() is results.metrics_validator()  # compiled once


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(constant: str) -> None:
    text = SAMPLE.read_text().replace('"rmse": ', f'"rmse": {constant}, "was": ', 1)
    assert constant in rejected(text.encode())


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "1E400", "123456789e999"])
def test_numbers_that_overflow_to_infinity_are_rejected(literal: str) -> None:
    text = SAMPLE.read_text().replace('"rmse": ', f'"rmse": {literal}, "was": ', 1)
    assert "finite" in rejected(text.encode())


def test_a_nan_in_a_free_form_part_is_rejected_too() -> None:
    document = sample()
    document["model"]["params"]["learning_rate"] = float("nan")
    assert "NaN" in rejected(json.dumps(document).encode())  # json.dumps writes NaN by default


@pytest.mark.parametrize("digits", [21, 4000, 5000])
def test_huge_integers_are_rejected(digits: int) -> None:
    huge = "1" + "0" * (digits - 1)  # 10**3999 has 4000 digits: under Python's own 4300 limit
    text = SAMPLE.read_text().replace('"rows": ', f'"rows": {huge}, "was": ', 1)
    assert "digits" in rejected(text.encode())


@pytest.mark.parametrize("value", [1e300, -1e120, 1e-200])
def test_numbers_dynamodb_cannot_store_are_rejected(value: float) -> None:
    document = sample()
    document["model"]["params"]["odd"] = value
    assert "out of range" in rejected(raw(document))


def test_a_wrong_run_id_is_rejected() -> None:
    document = sample()
    document["run_id"] = "another-run"
    assert "another-run" in rejected(raw(document)) and RUN_ID in rejected(raw(document))
    assert "sample-run-1" in rejected(SAMPLE.read_bytes(), run_id="sample-run-2")


def test_oversize_input_is_rejected_before_parsing() -> None:
    data = SAMPLE.read_bytes().rstrip()[:-1] + b',"pad":"' + b"x" * MAX_METRICS_BYTES + b'"}'
    assert "limit" in rejected(data)


def test_input_at_the_limit_is_read() -> None:
    data = SAMPLE.read_bytes().rstrip()[:-1] + b',"pad":"'
    data += b"x" * (MAX_METRICS_BYTES - len(data) - 2) + b'"}'
    assert len(data) == MAX_METRICS_BYTES
    assert parse_metrics(data, RUN_ID).run_id == RUN_ID  # an unknown top-level key is allowed, and ignored


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"not json", b"{'single': 1}", b"\xff\xfe{}", b"\xef\xbb\xbf{}", b'{"a": 1} trailing'],
)
def test_what_is_not_json_is_rejected(data: bytes) -> None:
    rejected(data)


def test_deep_nesting_and_duplicate_keys_are_rejected() -> None:
    assert "deeper" in rejected(b"[" * 100_000 + b"]" * 100_000)
    document = sample()
    document["model"]["params"]["deep"] = json.loads("[" * 30 + "]" * 30)
    assert "deeper" in rejected(raw(document))
    text = SAMPLE.read_text().replace('"rmse": ', '"rmse": 1.0, "rmse": ', 1)
    assert "twice" in rejected(text.encode())


def test_lone_surrogates_are_rejected() -> None:
    document = sample()
    document["data"]["source"] = "\ud800"
    assert "Unicode" in rejected(raw(document))  # json.dumps escapes it as \ud800


def _broken(change: Any) -> bytes:
    document = copy.deepcopy(sample())
    change(document)
    return raw(document)


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("not an object", lambda d: d.clear() or d.update({"x": [1]})),
        ("missing metrics", lambda d: d.pop("metrics")),
        ("negative RMSE", lambda d: d["metrics"].update(rmse=-1.0)),
        ("RMSE over 1e12", lambda d: d["metrics"].update(rmse=2e12)),
        ("MAE over 1e12", lambda d: d["metrics"].update(mae=1e13)),
        ("r2 over 1", lambda d: d["metrics"].update(r2=1.5)),
        ("a string metric", lambda d: d["metrics"].update(rmse="81,234")),
        ("an extra metric", lambda d: d["metrics"].update({"<script>": 1.0})),
        ("COD over the bound", lambda d: d["ratio_study"]["cod"].update(value=1e10)),
        ("PRB under the bound", lambda d: d["ratio_study"]["prb"].update(value=-1e10)),
        ("a CI over the bound", lambda d: d["ratio_study"]["mki"].update(ci=[0.0, 1e10])),
        ("a negative count", lambda d: d["data"].update(n_test=-1)),
        ("a count over 1e9", lambda d: d["data"].update(rows=2_000_000_000)),
        ("a fractional count", lambda d: d["data"].update(n_train=1.5)),
        ("an area count over 1e9", lambda d: d["by_area"][0].update(n=10**10)),
        ("no threads", lambda d: d["model"].update(threads=0)),
        ("alpha over 1", lambda d: d["data"]["bootstrap"].update(alpha=2)),
        ("a long run id", lambda d: d.update(run_id="x" * 300)),
        ("a plot outside plots/", lambda d: d["artifacts"].update(plots=["../../etc/passwd.png"])),
    ],
)
def test_documents_outside_the_schema_are_rejected(what: str, change: Any) -> None:
    assert "container contract" in rejected(_broken(change)), what


def test_a_schema_reason_quoting_hostile_keys_stays_one_short_line() -> None:
    data = _broken(lambda d: d["metrics"].update({"x" * 5000 + "\n@here": 1.0}))
    assert len(rejected(data)) < 500


def test_the_schema_bounds_are_finite_everywhere() -> None:
    schema = json.loads(results.METRICS_SCHEMA.read_text())
    numeric: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            types = node.get("type")
            types = types if isinstance(types, list) else [types]
            if "number" in types or "integer" in types:
                numeric.append(path)
                assert "minimum" in node and "maximum" in node, path
                assert abs(node["minimum"]) <= 1e12 and abs(node["maximum"]) <= 1e12, path
            for key, child in node.items():
                walk(child, f"{path}/{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{path}/{i}")

    walk(schema, "#")
    assert len(numeric) >= 20


def test_images_are_bounded_pngs() -> None:
    check_image("ratio_vs_price.png", results.PNG_SIGNATURE + b"\0" * 100)
    with pytest.raises(ContractError, match="limit"):
        check_image("big.png", results.PNG_SIGNATURE + b"\0" * results.MAX_IMAGE_BYTES)
    with pytest.raises(ContractError, match="not a PNG"):
        check_image("evil.png", b"<svg onload=alert(1)>")
    assert results.MAX_IMAGES >= 2


# -- the holdout predictions (artifacts.holdout) ------------------------------------------------
HEADER = "sale_id,sale_price,estimate,area,ratio_outlier"


def holdout(*rows: str, header: str = HEADER) -> bytes:
    return gzip.compress(("\n".join([header, *rows]) + "\n").encode(), mtime=0)


def test_holdout_predictions_are_read_column_by_column() -> None:
    found = parse_holdout(holdout("s1,500000,510000.5,10,0", "s2,250000.0,240000,other,1"))
    assert list(found.sale_id) == ["s1", "s2"] and list(found.price) == [500000.0, 250000.0]
    assert list(found.estimate) == [510000.5, 240000.0] and list(found.area) == ["10", "other"]
    assert list(found.trimmed) == [False, True]


def test_the_sample_models_holdout_is_read() -> None:
    """What the sample model writes (pandas' CSV, gzip with no timestamp) reads back."""
    found = parse_holdout(
        holdout(*(f"{i},{400000 + i},{400000.123456789 + i},{i % 3},{int(i % 50 == 0)}" for i in range(500)))
    )
    assert len(found) == 500 and sum(found.trimmed) == 10


def _bomb() -> bytes:
    inflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return inflater.compress((HEADER + "\n").encode() + b"0" * (results.MAX_HOLDOUT_TEXT + 10)) + inflater.flush()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"sale_id,sale_price\n", "not gzip"),
        (holdout("s1,1,1,a,0")[:-8], "not a complete gzip"),
        (holdout("s1,1,1,a,0") + b"extra", "after its gzip"),
        (_bomb(), "decompresses to more than"),
        (holdout("s1,1,1,a,0", header="id,price,estimate,area,outlier"), "header"),
        (holdout(), "no sales"),
        (holdout("s1,1,1,a"), "fields"),
        (holdout("s1,nan,1,a,0"), "positive number"),
        (holdout("s1,1,inf,a,0"), "positive number"),
        (holdout("s1,-5,1,a,0"), "positive number"),
        (holdout("s1,1e200,1,a,0"), "positive number"),
        (holdout("s1,abc,1,a,0"), "not a number"),
        (holdout("s1,1,1,a,maybe"), "0 or 1"),
        (holdout(",1,1,a,0"), "printable"),
        (holdout("s\x1b[31m,1,1,a,0"), "printable"),
        (holdout("x" * 65 + ",1,1,a,0"), "printable"),
        (gzip.compress(HEADER.encode() + b"\n\xff,1,1,a,0\n", mtime=0), "UTF-8"),
        (holdout('"s1,1,1,a,0'), "not CSV"),
    ],
)
def test_holdout_predictions_outside_the_contract_are_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(ContractError, match=reason) as error:
        parse_holdout(data)
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


def test_holdout_predictions_are_bounded() -> None:
    with pytest.raises(ContractError, match="limit"):
        parse_holdout(b"\0" * (results.MAX_HOLDOUT_BYTES + 1))
    rows = (f"s{i},1,1,a,0" for i in range(results.MAX_HOLDOUT_ROWS + 1))
    with pytest.raises(ContractError, match="more than"):
        parse_holdout(holdout(*rows))


def test_the_params_diff_shows_what_changed() -> None:
    base = b"library: lightgbm\nlightgbm:\n  params:\n    num_leaves: 63\n"
    this = base.replace(b"63", b"127")
    diff = params_diff(base, this)
    assert "-    num_leaves: 63" in diff and "+    num_leaves: 127" in diff
    assert diff[0].startswith("--- main") and diff[1].startswith("+++ this run")
    assert params_diff(base, base) == [] and params_diff(None, this) == [] and params_diff(base, None) == []
    long = params_diff(base, b"x" * 10_000)
    assert long and all(len(line) <= 300 for line in long)
