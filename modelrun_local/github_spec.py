"""GitHub's published OpenAPI description, and the checks the local GitHub makes with it.

The description is vendored from npm ``@octokit/openapi`` (see ``vendor/github-openapi/PROVENANCE.md``).
Requests are routed by it (an unknown one is told apart from a real endpoint the local GitHub
does not implement) and checked against it, and answers can be checked against its response
schemas, so the fake cannot drift into a shape of its own. Refusals are raised as ``Rejected``,
with the status and body GitHub answers with.
"""

from __future__ import annotations

import copy
import json
import lzma
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import (
    MissingRequiredRequestBody,
    ParameterValidationError,
    RequestBodyValidationError,
)
from werkzeug.datastructures import Headers, ImmutableMultiDict

DESCRIPTION_PATH = Path(__file__).parent / "vendor" / "github-openapi" / "api.github.com.json.xz"

# The operations this endpoint implements. Only these (and the components they reference) are
# handed to openapi-core: path finding over all ~800 GitHub paths costs ~10 ms a request, over
# these ~2-3 ms. The full description still decides whether an unknown request is a real GitHub
# endpoint (not implemented here) or no endpoint at all.
IMPLEMENTED: tuple[tuple[str, str], ...] = (
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("post", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs"),
    ("post", "/app/installations/{installation_id}/access_tokens"),
    ("get", "/repos/{owner}/{repo}/installation"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}"),
    ("get", "/repos/{owner}/{repo}"),
    ("get", "/repos/{owner}/{repo}/contents/{path}"),
    ("get", "/repos/{owner}/{repo}/actions/oidc/customization/sub"),
    ("put", "/repos/{owner}/{repo}/actions/oidc/customization/sub"),
    ("get", "/orgs/{org}/actions/oidc/customization/sub"),
    ("put", "/orgs/{org}/actions/oidc/customization/sub"),
    ("get", "/repos/{owner}/{repo}/environments/{environment_name}"),
    ("get", "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies"),
    ("get", "/repos/{owner}/{repo}/actions/variables"),
)


# GitHub's server URL in the description; requests are checked as if sent there.
_SPEC_HOST = "https://api.github.com"
DOCS = "https://docs.github.com/rest"


class Rejected(Exception):
    """A request GitHub refuses: the status, body and headers it answers with, and why."""

    def __init__(self, status: int, body: dict[str, Any], reason: str, headers: Mapping[str, str] | None = None):
        super().__init__(reason)
        self.status = status
        self.body = body
        self.reason = reason
        self.headers = dict(headers or {})


def error_body(message: str, docs_url: str, status: int, errors: list[Any] | None = None) -> dict[str, Any]:
    """An error answer as GitHub shapes it."""
    body: dict[str, Any] = {"message": message, "documentation_url": docs_url, "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return body


@dataclass(frozen=True)
class Operation:
    """One operation of the description, as the router needs it."""

    method: str
    template: str
    operation_id: str
    docs_url: str
    # Path segments; None marks a parameter. Plain segment matching (no regexes): compiling
    # ~1200 patterns would add ~0.4 s to the load.
    segments: tuple[str | None, ...] = field(repr=False, compare=False)
    param_names: tuple[str, ...] = field(repr=False, compare=False)
    # The last parameter spans slashes (the description's ``x-multi-segment``: a file's path).
    multi_segment: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def parse(
        cls, method: str, template: str, operation_id: str, docs_url: str, multi_segment: bool = False
    ) -> Operation:
        parts = template.split("/")
        segments = tuple(None if p.startswith("{") and p.endswith("}") else p for p in parts)
        names = tuple(p[1:-1] for p in parts if p.startswith("{") and p.endswith("}"))
        return cls(method, template, operation_id, docs_url, segments, names, multi_segment)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if self.multi_segment and len(parts) > len(self.segments):
            parts = [*parts[: len(self.segments) - 1], "/".join(parts[len(self.segments) - 1 :])]
        if len(parts) != len(self.segments):
            return None
        values = []
        for want, got in zip(self.segments, parts, strict=True):
            if want is None:
                if not got:
                    return None
                values.append(got)
            elif want != got:
                return None
        return dict(zip(self.param_names, values, strict=True))


class _SpecRequest:
    """A request as openapi-core reads it (its ``openapi_core.protocols.Request``)."""

    def __init__(self, method: str, path: str, query: Mapping[str, str], headers: Headers, body: bytes):
        self.host_url = _SPEC_HOST
        self.path = path
        self.method = method
        self.body: bytes | None = body or None
        # GitHub parses a body as JSON whatever its Content-Type says, so we do too.
        self.content_type = "application/json"
        self.parameters = RequestParameters(query=ImmutableMultiDict(query), header=headers)


class _SpecResponse:
    """A response as openapi-core reads it (its ``openapi_core.protocols.Response``)."""

    def __init__(self, status_code: int, data: bytes, headers: Headers):
        self.status_code = status_code
        self.data = data
        self.headers = headers
        self.content_type = "application/json"


class GitHubDescription:
    """GitHub's OpenAPI description, loaded once per process (see ``github_description()``)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.operations: list[Operation] = []
        # Operations whose 422 lists its errors as plain strings (``validation_failed_simple``).
        self.simple_errors: set[tuple[str, str]] = set()
        for template, item in document["paths"].items():
            for method, op in item.items():
                if method in {"get", "post", "put", "patch", "delete", "head"}:
                    if op.get("responses", {}).get("422", {}).get("$ref", "").endswith("/validation_failed_simple"):
                        self.simple_errors.add((method, template))
                    docs = op.get("externalDocs", {}).get("url", DOCS)
                    multi = template.endswith("}") and any(
                        p.get("x-multi-segment") and p.get("in") == "path" for p in op.get("parameters", [])
                    )
                    self.operations.append(Operation.parse(method, template, op["operationId"], docs, multi))
        # More literal segments first: /issues/comments/{id} before /issues/{issue_number}.
        self.operations.sort(key=lambda o: (o.template.count("{"), -len(o.template)))
        self.implemented = {(m, t) for m, t in IMPLEMENTED}
        missing = self.implemented - {(o.method, o.template) for o in self.operations}
        if missing:
            raise ValueError(f"the vendored description lacks {sorted(missing)}")
        self.openapi = OpenAPI.from_dict(_subset(document, IMPLEMENTED), config=Config(spec_validator_cls=None))

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The documented operation for ``method path`` and its path parameters."""
        parts = path.split("/")
        for op in self.operations:
            if op.method == method and (params := op.match(parts)) is not None:
                return op, params
        return None

    def _spec_path(self, method: str, path: str) -> str:
        """The path as openapi-core matches it: a multi-segment parameter's slashes escaped (its
        path templates take one segment per parameter)."""
        found = self.find(method, path)
        if found is None or not found[0].multi_segment:
            return path
        op, params = found
        last = params[op.param_names[-1]]
        return path.removesuffix(last) + quote(last, safe="")

    def path_exists(self, path: str) -> bool:
        parts = path.split("/")
        return any(op.match(parts) is not None for op in self.operations)

    def request_errors(
        self, method: str, path: str, query: Mapping[str, str], headers: Headers, body: bytes
    ) -> list[Exception]:
        req = _SpecRequest(method, self._spec_path(method, path), query, headers, body)
        return list(self.openapi.request_validator.iter_errors(req))

    def response_errors(
        self, method: str, path: str, query: Mapping[str, str], status: int, headers: Headers, data: bytes
    ) -> list[str]:
        """How an answer departs from the operation's documented response, one line each."""
        req = _SpecRequest(method, self._spec_path(method, path), query, Headers(), b"")
        resp = _SpecResponse(status, data, headers)
        return [
            describe(e)
            for e in self.openapi.response_validator.iter_errors(req, resp)
            # The description lists only some error statuses per operation (no 401 or 422 for
            # statuses, say); an undocumented status has no schema to check.
            if not isinstance(e, ResponseNotFound)
        ]


def _subset(document: dict[str, Any], operations: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The description cut down to ``operations`` and every component they reference."""
    paths: dict[str, Any] = {}
    for method, template in operations:
        item = document["paths"][template]
        kept = paths.setdefault(template, {k: v for k, v in item.items() if k == "parameters"})
        kept[method] = item[method]
    paths = copy.deepcopy(paths)
    components: dict[str, dict[str, Any]] = {}
    pending: list[Any] = [paths]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("nullable") is True and isinstance(node.get("enum"), list) and None not in node["enum"]:
                # OAS 3.0.3: a nullable enum must list null to allow it; GitHub's description
                # omits it (check-run "conclusion" is null while a run is queued), so add it.
                node["enum"] = [*node["enum"], None]
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/"):
                _, _, section, name = ref.split("/", 3)
                bucket = components.setdefault(section, {})
                if name not in bucket:
                    bucket[name] = copy.deepcopy(document["components"][section][name])
                    pending.append(bucket[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return {
        "openapi": document["openapi"],
        "info": document["info"],
        "servers": document["servers"],
        "paths": paths,
        "components": components,
    }


_description: GitHubDescription | None = None
_description_lock = threading.Lock()


def github_description() -> GitHubDescription:
    """The vendored description, decompressed and prepared on first use (~0.3 s), then cached."""
    global _description
    with _description_lock:
        if _description is None:
            with lzma.open(DESCRIPTION_PATH) as f:
                _description = GitHubDescription(json.load(f))
        return _description


def check_request(
    description: GitHubDescription,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Headers,
    body: bytes,
    docs: str,
) -> Any:
    """The request's JSON body, once the description admits the request; else ``Rejected`` with
    GitHub's answer: 400 for a body that is not JSON, 404 for a path it does not route, 422 with
    GitHub-style ``errors`` for parameters or a body the schema refuses."""
    parsed: Any = None
    if body:
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise Rejected(400, error_body("Problems parsing JSON", docs, 400), "body is not JSON") from exc
    errors = description.request_errors(method, path, query, headers, body)
    if not errors:
        return parsed
    first = errors[0]
    if isinstance(first, PathError) or (isinstance(first, ParameterValidationError) and first.location == "path"):
        # e.g. /issues/abc/comments: GitHub does not route it at all.
        raise Rejected(404, error_body("Not Found", docs, 404), describe(first))
    items = [item for e in errors for item in _error_items(e)]
    message = "Invalid request.\n\n" + "\n".join(i["message"] for i in items)
    found = description.find(method, path)
    simple = found is not None and (found[0].method, found[0].template) in description.simple_errors
    listed: list[Any] = [i["message"] for i in items] if simple else items
    raise Rejected(422, error_body(message, docs, 422, listed), "; ".join(describe(e) for e in errors))


def _schema_errors(exc: BaseException) -> list[Any]:
    cause = exc.__cause__
    return list(getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None) or [])


def describe(exc: BaseException) -> str:
    details = [e.message for e in _schema_errors(exc)]
    return f"{exc}" + (f" ({'; '.join(details)})" if details else "")


def _error_items(exc: Exception) -> Iterator[dict[str, Any]]:
    """GitHub-style ``errors`` entries for one openapi-core validation error."""
    if isinstance(exc, MissingRequiredRequestBody):
        yield {"code": "missing", "message": "Request body is required"}
        return
    if isinstance(exc, ParameterValidationError):
        yield {"code": "invalid", "field": exc.name, "message": f'"{exc.name}" is invalid ({exc.location})'}
        return
    schema_errors = _schema_errors(exc)
    if isinstance(exc, RequestBodyValidationError) and schema_errors:
        for err in schema_errors:
            field_path = "/".join(str(p) for p in err.absolute_path)
            if err.validator == "required":
                missing = re.findall(r"'([^']+)' is a required property", err.message)
                name = "/".join(filter(None, [field_path, *missing]))
                yield {"code": "missing_field", "field": name, "message": f'"{name}" wasn\'t supplied.'}
            else:
                yield {"code": "invalid", "field": field_path, "message": err.message}
        return
    yield {"code": "invalid", "message": str(exc)}
