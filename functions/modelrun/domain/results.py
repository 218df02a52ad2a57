"""The container contract's read side: what the report path accepts from a model's results.

Pure Python (no AWS): the model container is the PR author's code, so metrics.json and the plots
are untrusted input. ``parse_metrics`` turns metrics.json's bytes into a document that follows
the published schema, or raises :class:`ContractError` with a reason fit to show on the PR
(through the report's text helpers: it may quote the document).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

METRICS_SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "metrics.v1.schema.json"
MAX_METRICS_BYTES = 1024 * 1024  # the sample model writes ~6 KB
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # each plot, inlined into report.html
MAX_IMAGES = 20  # plots read into report.html; more are left out
MAX_DEPTH = 20  # nesting of objects and arrays (the schema needs 6; DynamoDB allows 32 in a record)
MAX_INT_DIGITS = 20  # an integer literal longer than this is an attack, not a count (2**64 has 20)
MAX_MAGNITUDE = 1e100  # DynamoDB numbers: |x| < 1e126 and >= 1e-130 (or 0)
MIN_MAGNITUDE = 1e-100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_REASON_LIMIT = 300


class ContractError(Exception):
    """The results break the container contract; ``str(error)`` says how, in one line."""


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


def parse_metrics(raw: bytes, run_id: str) -> dict[str, Any]:
    """metrics.json's bytes as a document of the contract, for run ``run_id``, or ContractError.

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
    try:
        metrics_validator()(document)
    except fastjsonschema.JsonSchemaValueException as error:
        message = error.message if len(error.message) <= _REASON_LIMIT else error.message[: _REASON_LIMIT - 1] + "…"
        raise ContractError(f"metrics.json does not follow the container contract: {message}") from None
    if document["run_id"] != run_id:
        raise ContractError(f"metrics.json is for run {_short(document['run_id'])}, not this run ({run_id})")
    result: dict[str, Any] = document
    return result


def check_image(name: str, data: bytes) -> None:
    """A plot fit to inline into report.html: a PNG of at most MAX_IMAGE_BYTES, or ContractError."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ContractError(f"plot {_short(name)} is {len(data):,} bytes: the limit is {MAX_IMAGE_BYTES:,}")
    if not data.startswith(PNG_SIGNATURE):
        raise ContractError(f"plot {_short(name)} is not a PNG")
