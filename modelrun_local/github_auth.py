"""The local GitHub's credentials, checked as GitHub checks them.

A fixed token (None for none), or the App's: a JWT signed with the App's key, with GitHub's rules
for ``iss``, ``iat`` and ``exp``, exchanged for an installation token that expires. Refusals are
GitHub's 401 answers (``github_spec.Rejected``).
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from modelrun_local.github_documents import APP_PERMISSIONS, client_id, iso, utcnow
from modelrun_local.github_spec import DOCS, Rejected, error_body

INSTALLATION_TOKEN_TTL = timedelta(hours=1)  # GitHub's installation tokens last an hour
# The operation id of the App JWT's exchange for an installation token, and of the App's lookup
# of a repository's installation: the calls an App JWT authenticates.
EXCHANGE_OPERATION = "apps/create-installation-access-token"
INSTALLATION_OPERATION = "apps/get-repo-installation"
APP_JWT_OPERATIONS = frozenset({EXCHANGE_OPERATION, INSTALLATION_OPERATION})
_JWT_MAX_LIFETIME_S = 600  # GitHub refuses app JWTs that expire more than 10 minutes ahead
_JWT_CLOCK_SKEW_S = 60  # GitHub tolerates an 'iat' this far in the future (clock drift)


def bearer(authorization: str) -> str | None:
    """The credential of an ``Authorization`` header in either scheme GitHub accepts."""
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() in ("bearer", "token") and credential.strip():
        return credential.strip()
    return None


class Credentials:
    """What the local GitHub accepts, and the installation tokens it has issued.

    The App is installed once as ``installation_id`` for every owner without an installation of
    its own (``add_installation``); an installation token reaches only its installation's
    repositories, as on GitHub."""

    def __init__(
        self,
        token: str | None,
        app_id: int,
        installation_id: int,
        app_key: rsa.RSAPrivateKey,
        installation_token_ttl: timedelta = INSTALLATION_TOKEN_TTL,
    ) -> None:
        self.token = token
        self.app_id = app_id
        self.installation_id = installation_id
        self.installation_token_ttl = installation_token_ttl
        self._app_key = app_key
        self._lock = threading.Lock()
        # installation id -> the owner it is installed on (None: every owner without its own)
        self.installations: dict[int, str | None] = {installation_id: None}
        self._installation_tokens: dict[str, tuple[datetime, int]] = {}  # token -> expiry, installation
        # A person's tokens (what `gh auth token` gives): token -> login. They reach every
        # repository here, as an administrator's would.
        self.user_tokens: dict[str, str] = {}
        # Repositories left out of the installation that covers their owner (the App's
        # "Only select repositories"): its lookup finds none, its tokens do not reach them.
        self.uninstalled: set[str] = set()

    def add_installation(self, owner: str, installation_id: int) -> None:
        """The App installed on ``owner``'s repositories as ``installation_id``."""
        with self._lock:
            self.installations[installation_id] = owner.lower()

    def installation_of(self, owner: str) -> int:
        """The installation that covers ``owner``'s repositories."""
        with self._lock:
            own = [i for i, account in self.installations.items() if account == owner.lower()]
            return own[0] if own else self.installation_id

    def installation_of_repository(self, repository: str) -> int | None:
        """The installation that covers ``owner/name``, None when the App is not installed on it."""
        with self._lock:
            if repository.lower() in self.uninstalled:
                return None
        return self.installation_of(repository.split("/", 1)[0])

    def user_token(self, login: str) -> str:
        """A token of ``login`` (made on first use)."""
        with self._lock:
            for token, owner in self.user_tokens.items():
                if owner == login:
                    return token
            token = "ghp_" + secrets.token_urlsafe(27)[:36]
            self.user_tokens[token] = login
            return token

    def reaches(self, authorization: str, owner: str, repo: str | None = None) -> bool:
        """Whether an accepted credential may touch ``owner``'s repositories (``repo`` among
        them, when named): the fixed token and a person's may; an installation token only
        within its installation."""
        credential = bearer(authorization) or ""
        with self._lock:
            issued = self._installation_tokens.get(credential)
        if issued is None:
            return True
        if repo is not None:
            return issued[1] == self.installation_of_repository(f"{owner}/{repo}")
        return issued[1] == self.installation_of(owner)

    def app_secret(self) -> dict[str, str]:
        """The App's credentials as the README stores them in the secret (ids as strings, the
        private key as the PEM file GitHub lets an App owner download)."""
        pem = self._app_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        return {"app_id": str(self.app_id), "installation_id": str(self.installation_id), "private_key": pem}

    def expire_installation_tokens(self) -> int:
        """Every installation token issued so far expires now (as an hour later); returns how many."""
        with self._lock:
            past = utcnow() - timedelta(seconds=1)
            for token, (_, installation_id) in self._installation_tokens.items():
                self._installation_tokens[token] = (past, installation_id)
            return len(self._installation_tokens)

    def new_installation_token(self, body: Any, installation_id: int) -> dict[str, Any]:
        """``POST /app/installations/{id}/access_tokens``'s answer (the JWT already checked)."""
        token = "ghs_" + secrets.token_urlsafe(27)[:36]
        expires = utcnow() + self.installation_token_ttl
        with self._lock:
            self._installation_tokens[token] = (expires, installation_id)
        body = body or {}
        return {
            "token": token,
            "expires_at": iso(expires),
            "permissions": body.get("permissions", dict(APP_PERMISSIONS)),
            "repository_selection": "selected" if body.get("repositories") or body.get("repository_ids") else "all",
        }

    def token_kind(self, authorization: str, docs: str) -> str:
        """The kind of token the request carries ("token", "user", "installation"), or a 401 as GitHub
        answers (an expired installation token included: GitHub says "Bad credentials" for it too)."""
        credential = bearer(authorization)
        if credential is None:
            raise Rejected(401, error_body("Requires authentication", docs, 401), "no credentials")
        if self.token is not None and secrets.compare_digest(credential, self.token):
            return "token"
        with self._lock:
            issued = self._installation_tokens.get(credential)
            if issued is None and credential in self.user_tokens:
                return "user"
        if issued is None:
            raise Rejected(401, error_body("Bad credentials", DOCS, 401), "bad credentials")
        if issued[0] <= utcnow():
            raise Rejected(401, error_body("Bad credentials", DOCS, 401), "installation token expired")
        return "installation"

    def check_app_jwt(self, authorization: str, docs: str) -> str:
        """An App JWT as GitHub checks it: RS256, signed by the App's key, 'iss' the App's id
        (or client id), issued in the past, expiring in the future but at most 10 minutes ahead."""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()

        def refuse(message: str, reason: str | None = None) -> Rejected:
            return Rejected(401, error_body(message, docs, 401), reason or message)

        if scheme.lower() != "bearer" or token.count(".") != 2:
            raise refuse("A JSON web token could not be decoded", "access token needs an app JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise refuse("A JSON web token could not be decoded", f"undecodable JWT: {exc}") from exc
        if header.get("alg") != "RS256":
            raise refuse("A JSON web token could not be decoded", "JWT alg must be RS256")
        try:
            # Times are checked below with GitHub's own rules and messages.
            claims = jwt.decode(
                token,
                self._app_key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_iss": False},
            )
        except jwt.InvalidSignatureError as exc:
            raise refuse("A JSON web token could not be decoded", "JWT not signed by the App's key") from exc
        except jwt.InvalidTokenError as exc:
            raise refuse("A JSON web token could not be decoded", f"undecodable JWT: {exc}") from exc
        now = time.time()
        iat, exp, iss = claims.get("iat"), claims.get("exp"), claims.get("iss")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise refuse("'Issued at' and 'Expiration time' claims must be integers")
        if str(iss) not in {str(self.app_id), client_id(self.app_id)}:
            # GitHub looks the issuer up: another app's id, or none, finds no key to verify with.
            raise refuse("A JSON web token could not be decoded", f"JWT issuer {iss!r} is not app {self.app_id}")
        if iat > now + _JWT_CLOCK_SKEW_S:
            raise refuse("'Issued at' claim ('iat') must be an Integer representing a time in the past")
        if exp <= now:
            raise refuse("'Expiration time' claim ('exp') must be a numeric value representing the future time")
        if exp - now > _JWT_MAX_LIFETIME_S + _JWT_CLOCK_SKEW_S or exp - iat > _JWT_MAX_LIFETIME_S + _JWT_CLOCK_SKEW_S:
            raise refuse("'Expiration time' claim ('exp') is too far in the future")
        return "app"
