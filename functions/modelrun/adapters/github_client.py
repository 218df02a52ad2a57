"""GitHub's REST API, synchronously: gidgethub's sans-I/O core over urllib3.

gidgethub (a maintained GitHub library whose core does no I/O of its own) builds the headers,
expands the URL templates, decodes each answer, raises its typed exception for an error answer
(status code and headers kept, so ``adapters.github.classify`` can read ``Retry-After`` and the
rate-limit headers) and follows the pagination links.
urllib3 carries the requests: it is botocore's own transport, so it is already loaded in every
function and adds nothing to a cold start; one connection pool per client keeps connections
open across the calls of a warm container.

Nothing here retries or follows up a failed write: a POST that failed with a 5xx may still have
landed, and retrying is the state machine's job. Importing this module costs a few milliseconds;
cryptography (the App's JWT) loads only when a GitHub App signs one.
"""

from __future__ import annotations

import base64
import http
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import urllib3
from gidgethub import BadRequest, GitHubBroken, sansio

from modelrun.errors import Unreachable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# The REST API version the backend is written against (GitHub sends it back in its answers).
API_VERSION = "2026-03-10"
ACCEPT = "application/vnd.github+json"
REQUESTER = "modelrun"  # GitHub asks for a User-Agent naming the app
TIMEOUT_S = 10.0
_KNOWN_STATUSES = frozenset(s.value for s in http.HTTPStatus)
# A body-less POST (the installation token exchange): gidgethub's sentinel for "no body".
NO_BODY = b""
# A GitHub App's JWT as GitHub documents it: issued a minute back (clock drift), at most ten
# minutes' life.
JWT_BACKDATE_S = 60
JWT_LIFE_S = 600


class GitHubClient:
    """One credential's client: ``oauth_token`` (a token or an installation token) rides on every
    request unless a call passes ``jwt`` (a GitHub App's own endpoints)."""

    def __init__(
        self,
        base_url: str,
        *,
        oauth_token: str | None = None,
        timeout: float = TIMEOUT_S,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self.base_url = base_url
        self.oauth_token = oauth_token
        # No retries of any kind (see the module's docstring). Redirects are followed: GitHub
        # redirects the API calls of a renamed or moved repository.
        retries = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5)
        self._pool = pool or urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout), retries=retries)

    def with_token(self, oauth_token: str) -> GitHubClient:
        """The same client on another token (an App's installation token), sharing its
        connections: the token exchange's TLS connection carries the calls that follow."""
        return GitHubClient(self.base_url, oauth_token=oauth_token, pool=self._pool)

    def request(
        self,
        method: str,
        url: str,
        url_vars: Mapping[str, Any] | None = None,
        data: Any = NO_BODY,
        *,
        jwt: str | None = None,
    ) -> tuple[Any, str | None]:
        """The decoded answer and the next page's URL (None on the last page). An error answer
        raises gidgethub's exception for it (``status_code``, ``headers``; the message is its
        text); no answer at all raises :class:`Unreachable`."""
        filled = sansio.format_url(url, url_vars, base_url=self.base_url)
        headers = sansio.create_headers(
            REQUESTER, accept=ACCEPT, oauth_token=None if jwt else self.oauth_token, jwt=jwt
        )
        headers["x-github-api-version"] = API_VERSION
        body: bytes | None = None
        if data is not NO_BODY:
            body = json.dumps(data).encode()
            headers["content-type"] = "application/json; charset=utf-8"
        elif method != "GET":
            headers["content-length"] = "0"
        try:
            response = self._pool.request(method, filled, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as error:  # MaxRetryError, timeouts, protocol errors
            raise Unreachable(f"{method} {filled}: {type(error).__name__}") from error
        status = response.status
        answer_headers = {k.lower(): v for k, v in response.headers.itermerged()}  # sansio reads lower case
        if status not in _KNOWN_STATUSES:
            # gidgethub maps statuses through http.HTTPStatus; a proxy's 520 is not one.
            kind = GitHubBroken if status >= 500 else BadRequest
            code = http.HTTPStatus.BAD_GATEWAY if status >= 500 else http.HTTPStatus.BAD_REQUEST
            raise kind(code, f"GitHub answered {status}", headers=answer_headers)
        try:
            decoded, _, more = sansio.decipher_response(status, answer_headers, response.data)
        except ValueError as error:  # a body that is not what its content type says
            if 200 <= status < 300:  # a success that cannot be read: GitHub is unwell
                raise GitHubBroken(
                    http.HTTPStatus.BAD_GATEWAY, f"GitHub's {status} answer did not decode", headers=answer_headers
                ) from error
            # An error answer's status and headers still say what went wrong: decipher those.
            headless = {k: v for k, v in answer_headers.items() if k != "content-type"}
            sansio.decipher_response(status, headless, b"")
            raise  # not reached: deciphering an error status raises
        return decoded, more

    def getitem(self, url: str, url_vars: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", url, url_vars)[0]

    def getiter(self, url: str, url_vars: Mapping[str, Any] | None = None, *, key: str | None = None) -> Iterator[Any]:
        """Every item of a listing, page after page (GitHub's ``Link: rel="next"``). ``key``
        names the list in a listing that comes as an object (check runs: ``check_runs``)."""
        next_url: str | None = url
        variables = url_vars
        while next_url:
            page, next_url = self.request("GET", next_url, variables)
            variables = None  # the next link is a complete URL
            yield from page if key is None else page.get(key, [])

    def post(self, url: str, url_vars: Mapping[str, Any] | None = None, *, data: Any, jwt: str | None = None) -> Any:
        return self.request("POST", url, url_vars, data, jwt=jwt)[0]

    def patch(self, url: str, url_vars: Mapping[str, Any] | None = None, *, data: Any) -> Any:
        return self.request("PATCH", url, url_vars, data)[0]


class PerRepositoryClient(GitHubClient):
    """A GitHub App's client for several installations: each call on a repository's endpoint
    (``owner`` and ``repo`` among its URL's variables) goes through the client that
    ``for_repository`` gives for that repository (its installation's token)."""

    def __init__(self, app: GitHubClient, for_repository: Callable[[str], GitHubClient]) -> None:
        super().__init__(app.base_url, pool=app._pool)
        self._for_repository = for_repository

    def _route(self, url_vars: Mapping[str, Any] | None) -> GitHubClient:
        if not url_vars or not url_vars.get("owner") or not url_vars.get("repo"):
            raise ValueError("an App call without an installation names its repository (owner, repo)")
        return self._for_repository(f"{url_vars['owner']}/{url_vars['repo']}")

    def getitem(self, url: str, url_vars: Mapping[str, Any] | None = None) -> Any:
        return self._route(url_vars).getitem(url, url_vars)

    def getiter(self, url: str, url_vars: Mapping[str, Any] | None = None, *, key: str | None = None) -> Iterator[Any]:
        return self._route(url_vars).getiter(url, url_vars, key=key)

    def post(self, url: str, url_vars: Mapping[str, Any] | None = None, *, data: Any, jwt: str | None = None) -> Any:
        return self._route(url_vars).post(url, url_vars, data=data, jwt=jwt)

    def patch(self, url: str, url_vars: Mapping[str, Any] | None = None, *, data: Any) -> Any:
        return self._route(url_vars).patch(url, url_vars, data=data)


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def app_jwt(app_id: str, private_key: str | RSAPrivateKey) -> str:
    """A GitHub App's JWT: RS256 (RFC 7518: RSASSA-PKCS1-v1_5, SHA-256) over the claims GitHub
    documents. Signed with cryptography alone: PyJWT would bring its verifying side along (x509
    among it, some 70 ms of imports) to functions that only sign. The key as PEM text, or loaded
    already: cryptography checks an RSA key as it loads it (some 70 ms more), so the adapter
    loads it once per container."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = (
        serialization.load_pem_private_key(private_key.encode(), None) if isinstance(private_key, str) else private_key
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"a GitHub App's key is RSA, not {type(key).__name__}")
    issued = int(time.time()) - JWT_BACKDATE_S
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {"iat": issued, "exp": issued + JWT_LIFE_S, "iss": app_id}
    signed = ".".join(_base64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signed}.{_base64url(signature)}"


def installation_token(
    client: GitHubClient, app_id: str, installation_id: int, private_key: str | RSAPrivateKey
) -> tuple[str, str]:
    """The App's installation token and its expiry (ISO 8601), exchanged for the App's JWT."""
    answer = client.post(
        "/app/installations/{installation_id}/access_tokens",
        {"installation_id": installation_id},
        data=NO_BODY,
        jwt=app_jwt(app_id, private_key),
    )
    return str(answer["token"]), str(answer["expires_at"])


def repository_installation(
    client: GitHubClient, app_id: str, repository: str, private_key: str | RSAPrivateKey
) -> int:
    """The id of the App's installation that covers ``repository`` (``owner/name``), asked with
    the App's JWT."""
    owner, repo = repository.split("/", 1)
    answer, _ = client.request(
        "GET", "/repos/{owner}/{repo}/installation", {"owner": owner, "repo": repo}, jwt=app_jwt(app_id, private_key)
    )
    return int(answer["id"])
