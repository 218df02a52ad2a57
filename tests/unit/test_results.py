"""metrics.json, the holdout predictions and the params file are the model's (the PR author's)
output: parse_metrics and parse_predictions accept the contract (v2) only."""

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
from modelrun.domain.evaluation import Sales
from modelrun.domain.results import MAX_METRICS_BYTES, check_image, params_diff, parse_metrics, parse_predictions
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
    assert document.run_id == RUN_ID and document.predictions == "artifacts/predictions.csv.gz"
    assert document.groups == ["area"] and [m.name for m in document.metrics] == ["train_seconds", "n_features"]
    assert document.metrics[0].better == "lower" and document.metrics[1].unit is None
    assert parse_metrics(SAMPLE.read_bytes(), None).run_id == RUN_ID  # modelrun check: any run


def test_the_minimal_document_is_accepted() -> None:
    document = parse_metrics(raw({"schema_version": "2", "run_id": RUN_ID, "predictions": "p.csv"}), RUN_ID)
    assert document.groups == [] and document.metrics == [] and document.model is None


def test_a_version_1_document_is_refused_with_a_pointer_to_the_contract() -> None:
    reason = rejected(raw({"schema_version": "1", "run_id": RUN_ID, "metrics": {"rmse": 1.0}}))
    assert "version 2" in reason and "docs/contract.md" in reason


def test_the_published_schema_is_the_one_enforced() -> None:
    assert results.METRICS_SCHEMA.is_file()
    ours = json.loads(results.METRICS_SCHEMA.read_text())
    assert ours == json.loads((ROOT / "model_container" / "metrics.schema.json").read_text())
    assert results.metrics_validator() is results.metrics_validator()  # compiled once


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(constant: str) -> None:
    text = SAMPLE.read_text().replace('"value": ', f'"value": {constant}, "was": ', 1)
    assert constant in rejected(text.encode())


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "1E400", "123456789e999"])
def test_numbers_that_overflow_to_infinity_are_rejected(literal: str) -> None:
    text = SAMPLE.read_text().replace('"value": ', f'"value": {literal}, "was": ', 1)
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
    text = SAMPLE.read_text().replace('"value": ', '"value": 1.0, "value": ', 1)
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
        ("missing predictions", lambda d: d.pop("predictions")),
        ("predictions outside the results", lambda d: d.update(predictions="../main/predictions.csv")),
        ("predictions at the root", lambda d: d.update(predictions="/etc/predictions.csv")),
        ("predictions as Parquet", lambda d: d.update(predictions="predictions.parquet")),
        ("a grouping column with spaces", lambda d: d.update(groups=["market area"])),
        ("a group named twice", lambda d: d.update(groups=["area", "area"])),
        ("a metric without a value", lambda d: d["metrics"].append({"name": "x"})),
        ("a string metric", lambda d: d["metrics"].append({"name": "rmse", "value": "81,234"})),
        ("a metric over the bound", lambda d: d["metrics"].append({"name": "x", "value": 1e13})),
        ("a metric with markup", lambda d: d["metrics"].append({"name": "<script>", "value": 1.0})),
        ("a metric with an odd direction", lambda d: d["metrics"].append({"name": "x", "value": 1, "better": "up"})),
        ("a metric with more keys", lambda d: d["metrics"].append({"name": "x", "value": 1, "pass": True})),
        ("a negative count", lambda d: d["data"].update(n_train=-1)),
        ("a count over 1e9", lambda d: d["data"].update(rows=2_000_000_000)),
        ("a fractional count", lambda d: d["data"].update(n_train=1.5)),
        ("no threads", lambda d: d["model"].update(threads=0)),
        ("a long run id", lambda d: d.update(run_id="x" * 300)),
        ("a plot outside the results", lambda d: d.update(plots=["../../etc/passwd.png"])),
        ("a plot that is no image", lambda d: d.update(plots=["index.html"])),
    ],
)
def test_documents_outside_the_schema_are_rejected(what: str, change: Any) -> None:
    assert "container contract" in rejected(_broken(change)), what


def test_a_schema_reason_quoting_hostile_keys_stays_one_short_line() -> None:
    data = _broken(lambda d: d["metrics"].append({"name": "x" * 5000 + "\n@here", "value": 1.0}))
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
    assert len(numeric) >= 5


def test_images_are_bounded_pngs_or_svgs() -> None:
    check_image("ratio_vs_price.png", results.PNG_SIGNATURE + b"\0" * 100)
    check_image("ratio.svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>')
    with pytest.raises(ContractError, match="limit"):
        check_image("big.png", results.PNG_SIGNATURE + b"\0" * results.MAX_IMAGE_BYTES)
    with pytest.raises(ContractError, match="not a PNG"):
        check_image("evil.png", b"<svg onload=alert(1)>")
    with pytest.raises(ContractError, match="not an SVG"):
        check_image("evil.svg", b"<html><script>alert(1)</script>")
    assert results.MAX_IMAGES >= 2


# -- the holdout predictions (metrics.json's predictions) ---------------------------------------
HEADER = "sale_id,sale_price,estimate,area"


def holdout(*rows: str, header: str = HEADER) -> bytes:
    return gzip.compress(("\n".join([header, *rows]) + "\n").encode(), mtime=0)


def read(data: bytes, name: str = "p.csv.gz", groups: list[str] | None = None) -> Sales:
    return parse_predictions(data, name, ["area"] if groups is None else groups)


def test_holdout_predictions_are_read_by_their_header() -> None:
    found = read(holdout("s1,500000,510000.5,10", "s2,250000.0,240000,other"))
    assert list(found.sale_id) == ["s1", "s2"] and list(found.price) == [500000.0, 250000.0]
    assert list(found.estimate) == [510000.5, 240000.0] and list(found.groups["area"]) == ["10", "other"]
    # Columns in any order, others ignored, plain CSV (no gzip) when the name says so.
    plain = b"note,estimate,sale_id,sale_price\nx,1.5,a,2\ny,3,b,4\n"
    again = parse_predictions(plain, "predictions.csv", [])
    assert list(again.sale_id) == ["a", "b"] and list(again.estimate) == [1.5, 3.0] and again.groups == {}


def test_the_sample_models_holdout_is_read() -> None:
    """What the sample model writes (pandas' CSV, gzip with no timestamp) reads back."""
    found = read(holdout(*(f"{i},{400000 + i},{400000.123456789 + i},{i % 3}" for i in range(500))))
    assert len(found) == 500 and found.estimate[1] == 400001.123456789


def _bomb() -> bytes:
    inflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return inflater.compress((HEADER + "\n").encode() + b"0" * (results.MAX_HOLDOUT_TEXT + 10)) + inflater.flush()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"sale_id,sale_price\n", "not gzip"),
        (holdout("s1,1,1,a")[:-8], "not a complete gzip"),
        (holdout("s1,1,1,a") + b"extra", "after its gzip"),
        (_bomb(), "decompresses to more than"),
        (holdout("s1,1,1,a", header="id,price,estimate,area"), "no column sale_id, sale_price"),
        (holdout("s1,1,1", header="sale_id,sale_price,estimate"), "no column area"),
        (holdout("s1,1,1,a,b", header="sale_id,sale_price,estimate,area,area"), "twice"),
        (holdout(), "no sales"),
        (gzip.compress(b"", mtime=0), "empty"),
        (holdout("s1,1,1"), "fields"),
        (holdout("s1,nan,1,a"), "row 2: sale_price 'nan' must be a positive number"),
        (holdout("s1,1,1,a", "s2,1,inf,a"), "row 3: estimate 'inf' must be a positive number"),
        (holdout("s1,-5,1,a"), "row 2: sale_price '-5' must be a positive number"),
        (holdout("s1,0,1,a"), "row 2: sale_price '0' must be a positive number"),
        (holdout("s1,1,0,a"), "row 2: estimate '0' must be a positive number"),
        (holdout("s1,1e200,1,a"), "positive number"),
        (holdout("s1,1,1,a", "s2,abc,1,a"), "row 3: sale_price 'abc' is not a number"),
        (holdout("s1,1,1,a", "s1,2,2,a"), "sale_id 's1' appears twice"),
        (holdout(",1,1,a"), "printable"),
        (holdout("s1,1,1,"), "area must be"),
        (holdout("s\x1b[31m,1,1,a"), "printable"),
        (holdout("x" * 65 + ",1,1,a"), "printable"),
        (gzip.compress(HEADER.encode() + b"\n\xff,1,1,a\n", mtime=0), "UTF-8"),
        (holdout('"s1,1,1,a'), "not CSV"),
    ],
)
def test_holdout_predictions_outside_the_contract_are_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as error:
        read(data)
    assert reason in str(error.value)
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


def test_holdout_predictions_are_bounded() -> None:
    with pytest.raises(ContractError, match="limit"):
        read(b"\0" * (results.MAX_HOLDOUT_BYTES + 1))
    with pytest.raises(ContractError, match="more than 200 values"):
        read(holdout(*(f"s{i},1,1,a{i}" for i in range(results.MAX_GROUPS + 1))))
    with pytest.raises(ContractError, match="more than"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(results, "MAX_HOLDOUT_ROWS", 100)
        read(holdout(*(f"s{i},1,1,a" for i in range(101))))


def test_the_params_diff_shows_what_changed() -> None:
    base = b"library: lightgbm\nlightgbm:\n  params:\n    num_leaves: 63\n"
    this = base.replace(b"63", b"127")
    diff = params_diff(base, this)
    assert "-    num_leaves: 63" in diff and "+    num_leaves: 127" in diff
    assert diff[0].startswith("--- main") and diff[1].startswith("+++ this run")
    assert params_diff(base, base) == [] and params_diff(None, this) == [] and params_diff(base, None) == []
    long = params_diff(base, b"x" * 10_000)
    assert long and all(len(line) <= 300 for line in long)
    # Each side under the name its metrics.json gave (an R model's config.json, say).
    named = params_diff(base, this, names=("config.json", "config.json"))
    assert named[:2] == ["--- main: config.json", "+++ this run: config.json"]
