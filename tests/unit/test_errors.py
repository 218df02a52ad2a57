"""The state machine matches errors by name: every name it retries or catches must be an
exception in modelrun.errors that the functions' code raises, or that Retry can never fire."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from modelrun import errors

ROOT = Path(__file__).resolve().parents[2]
MACHINES = sorted((ROOT / "statemachine").glob("*.asl.json"))
SOURCES = [p for p in (ROOT / "functions").rglob("*.py") if p.name != "errors.py"]


def _error_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        yield from node.get("ErrorEquals", [])
        for value in node.values():
            yield from _error_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _error_names(value)


def matched_names() -> set[str]:
    """The names the state machines match, less the service's own (``States.ALL``,
    ``Lambda.ServiceException``: namespaced, never a class of ours)."""
    names = {n for path in MACHINES for n in _error_names(json.loads(path.read_text()))}
    return {n for n in names if "." not in n}


def _called_name(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


@cache
def trees() -> list[tuple[Path, ast.Module]]:
    """The functions' code, parsed once for every test here."""
    return [(p, ast.parse(p.read_text())) for p in SOURCES]


@cache
def raised_names() -> frozenset[str]:
    """Every name raised in the functions' code: ``raise Name(...)``, and what a function returns
    when its result is raised (``raise _translate(error)`` -> ``return classify(...)`` ->
    ``return GitHubUnavailable(...)``), followed to the end."""
    returns: dict[str, set[str]] = {}
    raised: set[str] = set()
    for _, tree in trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and (name := _called_name(node.exc)):
                raised.add(name)
            if isinstance(node, ast.FunctionDef):
                returns.setdefault(node.name, set()).update(
                    name
                    for r in ast.walk(node)
                    if isinstance(r, ast.Return) and (name := _called_name(r.value)) is not None
                )
    pending = list(raised)
    while pending:
        for name in returns.get(pending.pop(), set()) - raised:
            raised.add(name)
            pending.append(name)
    return frozenset(raised)


def test_the_state_machines_match_some_names_of_ours() -> None:
    assert MACHINES and {"GitHubUnavailable", "GitHubRateLimited", "PublishBusy"} <= matched_names()


@pytest.mark.parametrize("name", sorted(matched_names()))
def test_every_matched_name_is_an_exception_the_code_raises(name: str) -> None:
    assert isinstance(getattr(errors, name, None), type), f"{name} is not a class in modelrun/errors.py"
    assert issubclass(getattr(errors, name), Exception)
    assert name in raised_names(), f"nothing under functions/ raises {name}: a Retry on it never fires"


def test_the_raise_finder_sees_through_translation() -> None:
    names = raised_names()
    assert {"StaleWrite", "Rejected", "GitHubNotFound"} <= names  # raised directly, and via classify
    assert "ResultsNotReady" not in names


def test_no_module_defines_an_exception_of_its_own() -> None:
    """Exceptions that cross a boundary live in modelrun/errors.py, nowhere else."""
    defined = [
        f"{path.relative_to(ROOT)}: {node.name}"
        for path, tree in trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(_called_name(base) in ("Exception", *dir(errors)) for base in node.bases)
    ]
    assert defined == []
