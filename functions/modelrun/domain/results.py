"""The container contract's read side (v2, docs/contract.md): what the report path and
``modelrun check`` accept from a model's results.

Pure (no AWS): the model container is the PR author's code, so metrics.json, the holdout
predictions, the params file and the plots are untrusted input. ``parse_metrics`` turns
metrics.json's bytes into a :class:`MetricsDocument` that follows the published schema,
``parse_predictions`` the predictions CSV into :class:`Sales`; both raise :class:`ContractError`
with a reason fit to show on the PR (through the report's text helpers: it may quote the input).
Version 1 documents are refused with a pointer to the contract: the evaluation is modelrun's now.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import numpy as np
from pydantic import ValidationError

from modelrun.domain.documents import MetricsDocument
from modelrun.domain.evaluation import Sales
from modelrun.errors import ContractError, validation_problems

SCHEMA_VERSION = "2"
METRICS_SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "metrics.v2.schema.json"
MAX_METRICS_BYTES = 1024 * 1024  # the sample model writes ~1 KB
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # each plot, inlined into report.html
MAX_IMAGES = 20  # plots read into report.html; more are left out
MAX_DEPTH = 20  # nesting of objects and arrays (the schema needs 6; DynamoDB allows 32 in a record)
MAX_INT_DIGITS = 20  # an integer literal longer than this is an attack, not a count (2**64 has 20)
MAX_MAGNITUDE = 1e100  # DynamoDB numbers: |x| < 1e126 and >= 1e-130 (or 0)
MIN_MAGNITUDE = 1e-100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Where a version 1 run (collected before contract v2) kept its predictions: a baseline of then.
V1_HOLDOUT_PATH = "artifacts/predictions.csv.gz"
V1_PARAMS_PATH = "artifacts/params.yaml"
REQUIRED_COLUMNS = ("sale_id", "sale_price", "estimate")
MAX_HOLDOUT_BYTES = 64 * 1024 * 1024  # compressed; a million sales with a group take ~20 MB
MAX_HOLDOUT_TEXT = 256 * 1024 * 1024  # decompressed: a gzip bomb stops here, unread
MAX_HOLDOUT_ROWS = 1_000_000  # a state's holdout: measured within the function's memory (docs/evaluation.md)
MAX_GROUPS = 200  # labels in one grouping column
MAX_PARAMS_BYTES = 64 * 1024
MAX_FIELD = 64  # characters of a sale id or an area name
_REASON_LIMIT = 300


@cache
def metrics_validator() -> Callable[[Any], Any]:
    """The published schema, compiled once per process (compiling costs more than validating)."""
    validate: Callable[[Any], Any] = fastjsonschema.compile(json.loads(METRICS_SCHEMA.read_text()))
    return validate


def _short(text: object, limit: int = 80) -> str:
    value = repr(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _reject_constant(name: str) -> Any:
    raise ContractError(f"metrics.json holds {name}: numbers must be finite (NaN and Infinity are not JSON)")


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ContractError(f"metrics.json holds the number {_short(literal, 40)}, which is not finite")
    if value and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
        raise ContractError(f"metrics.json holds the number {_short(literal, 40)}, out of range")
    return value


def _parse_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise ContractError(f"metrics.json holds an integer of {len(literal.lstrip('-'))} digits")
    return int(literal)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON parsers disagree on which of two equal keys wins: the contract has no such documents.
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ContractError(f"metrics.json has the key {_short(key, 60)} twice in one object")
        document[key] = value
    return document


def _check_shape(document: Any) -> None:
    """Nesting within MAX_DEPTH; every string, keys too, valid Unicode (no lone surrogate from an escape)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            if level > MAX_DEPTH:
                raise ContractError(f"metrics.json nests deeper than {MAX_DEPTH} levels")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(key, str):
                    stack.append((key, level))
                stack.append((child, level + 1))
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise ContractError(f"metrics.json holds a string that is not Unicode: {_short(node)}") from None


def parse_metrics(raw: bytes, run_id: str | None) -> MetricsDocument:
    """metrics.json's bytes as a document of the contract, for run ``run_id`` (None: any run, as
    ``modelrun check`` reads a folder), or ContractError.

    Rejected: more than MAX_METRICS_BYTES; not UTF-8; not JSON; NaN, Infinity, -Infinity and
    numbers that overflow to them (1e999); integers of more than MAX_INT_DIGITS digits; numbers
    DynamoDB can't store; duplicate keys; nesting deeper than MAX_DEPTH; a document the schema
    rejects (bounds included); a ``run_id`` other than ``run_id``.
    """
    if len(raw) > MAX_METRICS_BYTES:
        raise ContractError(f"metrics.json is {len(raw):,} bytes: the limit is {MAX_METRICS_BYTES:,}")
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ContractError(f"metrics.json is not UTF-8 (byte {error.start})") from None
    try:
        document = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
            object_pairs_hook=_no_duplicate_keys,
        )
    except ContractError:
        raise
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise ContractError(f"metrics.json is not JSON: {error.msg} ({where})") from None
    except RecursionError:
        raise ContractError(f"metrics.json nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # e.g. Python's limit on digits in an int
        raise ContractError(f"metrics.json holds a number that can't be read: {_short(str(error), 120)}") from None
    _check_shape(document)
    if isinstance(document, dict) and document.get("schema_version") == "1":
        raise ContractError(
            "metrics.json is contract version 1: modelrun reads version 2, which names the holdout "
            "predictions and computes every statistic from them (docs/contract.md)"
        )
    try:
        metrics_validator()(document)
    except fastjsonschema.JsonSchemaValueException as error:
        message = error.message if len(error.message) <= _REASON_LIMIT else error.message[: _REASON_LIMIT - 1] + "…"
        raise ContractError(f"metrics.json does not follow the container contract: {message}") from None
    if run_id is not None and document["run_id"] != run_id:
        raise ContractError(f"metrics.json is for run {_short(document['run_id'])}, not this run ({run_id})")
    try:
        return MetricsDocument.model_validate(document)
    except ValidationError as error:  # the schema and the model disagree: a bug here, said as such
        first = validation_problems(error)[0]
        raise ContractError(f"metrics.json: {first} (not as the report reads the schema)") from None


def check_image(name: str, data: bytes) -> None:
    """A plot fit to inline into report.html: a PNG or an SVG of at most MAX_IMAGE_BYTES, or
    ContractError. (report.html shows an SVG as an <img>, where its scripts never run.)"""
    if len(data) > MAX_IMAGE_BYTES:
        raise ContractError(f"plot {_short(name)} is {len(data):,} bytes: the limit is {MAX_IMAGE_BYTES:,}")
    if name.endswith(".svg"):
        head = data[:512].lstrip().lower()
        if not (head.startswith(b"<svg") or head.startswith(b"<?xml")) or b"<svg" not in data[:4096].lower():
            raise ContractError(f"plot {_short(name)} is not an SVG")
    elif not data.startswith(PNG_SIGNATURE):
        raise ContractError(f"plot {_short(name)} is not a PNG")


def _gunzip(raw: bytes, limit: int, name: str) -> bytes:
    """gzip's payload, read no further than ``limit`` bytes (a small file can inflate to gigabytes)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error as error:
        raise ContractError(f"{name} is not gzip: {error}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise ContractError(f"{name} decompresses to more than {limit:,} bytes")
    if not inflater.eof:
        raise ContractError(f"{name} is not a complete gzip file")
    if inflater.unused_data:
        raise ContractError(f"{name} has data after its gzip stream")
    return data


def _numbers(values: list[str], what: str, name: str) -> np.ndarray:
    """A column of positive, finite dollars, or ContractError naming the first bad row."""
    try:
        column = np.array(values, dtype=np.float64)
    except ValueError:
        column = None
    if column is not None:
        bad = ~(np.isfinite(column) & (column > 0) & (column <= MAX_MAGNITUDE))
        if not bad.any():
            return column
        first = int(np.argmax(bad))
    else:
        first = next(i for i, v in enumerate(values) if not _is_number(v))
    value = values[first]
    problem = "is not a number" if not _is_number(value) else "must be a positive number"
    raise ContractError(f"{name} row {first + 2}: {what} {_short(value, 30)} {problem}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _labels(values: list[str], what: str, name: str) -> list[str]:
    for row, value in enumerate(values, start=2):
        if not value or len(value) > MAX_FIELD or not value.isprintable():
            raise ContractError(f"{name} row {row}: {what} must be 1-{MAX_FIELD} printable characters")
    return values


def parse_predictions(raw: bytes, name: str, groups: list[str] | None = None) -> Sales:
    """The holdout predictions (metrics.json's ``predictions``): UTF-8 CSV, gzip'd when ``name``
    ends .gz, with a header naming sale_id, sale_price, estimate and every column of ``groups``
    (others are ignored); one row per sale. Or ContractError: a clear reason, the row named."""
    groups = groups or []
    if len(raw) > MAX_HOLDOUT_BYTES:
        raise ContractError(f"{name} is {len(raw):,} bytes: the limit is {MAX_HOLDOUT_BYTES:,}")
    data = _gunzip(raw, MAX_HOLDOUT_TEXT, name) if name.endswith(".gz") else raw
    if len(data) > MAX_HOLDOUT_TEXT:
        raise ContractError(f"{name} is more than {MAX_HOLDOUT_TEXT:,} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ContractError(f"{name} is not UTF-8 (byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ContractError(f"{name} is empty: it needs a header and one row per holdout sale")
        wanted = [*REQUIRED_COLUMNS, *groups]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise ContractError(f"{name}: the header has no column {', '.join(missing)} (it needs {', '.join(wanted)})")
        if len(set(header)) != len(header):
            raise ContractError(f"{name}: the header names a column twice")
        width = len(header)
        at = [header.index(c) for c in wanted]
        columns: list[list[str]] = [[] for _ in wanted]
        for number, row in enumerate(reader, start=2):
            if len(row) != width:
                raise ContractError(f"{name} row {number} has {len(row)} fields, not {width}")
            if number > MAX_HOLDOUT_ROWS + 1:
                raise ContractError(f"{name} has more than {MAX_HOLDOUT_ROWS:,} sales")
            for column, i in zip(columns, at, strict=True):
                column.append(row[i])
    except csv.Error as error:
        raise ContractError(f"{name} is not CSV: {_short(str(error), 100)}") from None
    ids = columns[0]
    if not ids:
        raise ContractError(f"{name} holds no sales")
    _labels(ids, "sale_id", name)
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        twice = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise ContractError(f"{name}: sale_id {_short(twice, 70)} appears twice")
    price = _numbers(columns[1], "sale_price", name)
    estimate = _numbers(columns[2], "estimate", name)
    found: dict[str, list[str]] = {}
    for column_name, values in zip(groups, columns[3:], strict=True):
        found[column_name] = _labels(values, column_name, name)
        if len(set(values)) > MAX_GROUPS:
            raise ContractError(f"{name}: the grouping column {column_name} has more than {MAX_GROUPS} values")
    return Sales(ids, price, estimate, found)


def params_diff(
    base: bytes | None,
    this: bytes | None,
    limit_lines: int = 400,
    names: tuple[str, str] = ("params.yaml", "params.yaml"),
) -> list[str]:
    """The unified diff of the baseline run's params file against this run's (both untrusted:
    shown only inside a code block), each labelled with the name its metrics.json gave it;
    empty when they are the same or either is missing."""
    if base is None or this is None:
        return []
    old = base[:MAX_PARAMS_BYTES].decode("utf-8", errors="replace").splitlines()
    new = this[:MAX_PARAMS_BYTES].decode("utf-8", errors="replace").splitlines()
    old_name, new_name = (name.replace("\n", " ")[:100] for name in names)
    diff = list(difflib.unified_diff(old, new, f"main: {old_name}", f"this run: {new_name}", n=2, lineterm=""))
    return [line[:300] for line in diff[:limit_lines]]
