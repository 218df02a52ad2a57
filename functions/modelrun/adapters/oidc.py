"""The OIDC token's signature, issuer and audience, checked with the issuer's published keys.

The keys come from the issuer's discovery document (``<issuer>/.well-known/openid-configuration``
-> ``jwks_uri``), as GitHub publishes them (GitHub Enterprise Server: ``https://HOST/_services/token``).
PyJWT's key client caches them per container and refetches when a token names an unknown key id.
PyJWT (and cryptography under it, from the JWT layer) loads with the first token, not on import.
"""

from __future__ import annotations

import json
import urllib.request
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from modelrun.domain import naming
from modelrun.domain.evidence import Claims
from modelrun.errors import IssuerUnavailable, Unverified, validation_problems

if TYPE_CHECKING:
    import jwt

_ALGORITHMS = ["RS256"]
_TIMEOUT_S = 5


@cache
def _jwks_client(issuer: str) -> jwt.PyJWKClient:
    import jwt

    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    if not naming.https_or_loopback(url):
        raise IssuerUnavailable(f"issuer {issuer} is not https")
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:  # noqa: S310 - scheme checked above
            discovery: dict[str, Any] = json.load(response)
    except OSError as error:
        raise IssuerUnavailable(f"{url}: {error}") from error
    if discovery.get("issuer") != issuer:
        raise IssuerUnavailable(f"{url} names issuer {discovery.get('issuer')!r}, not {issuer!r}")
    return jwt.PyJWKClient(str(discovery["jwks_uri"]), cache_keys=True, lifespan=3600, timeout=_TIMEOUT_S)


class TokenVerifier:
    def __init__(self, issuer: str, audience: str) -> None:
        self.issuer = issuer
        self.audience = audience

    def claims(self, token: str) -> Claims:
        """The verified claims. Times are checked against the send time by the caller
        (:func:`modelrun.domain.evidence.check_token_time`), not against now."""
        import jwt

        try:
            key = _jwks_client(self.issuer).get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as error:
            raise IssuerUnavailable(str(error)) from error
        except jwt.PyJWKClientError as error:
            raise Unverified(f"OIDC token: {error}") from error
        except jwt.InvalidTokenError as error:
            raise Unverified(f"OIDC token: {error}") from error
        try:
            payload = jwt.decode(
                token,
                key.key,
                algorithms=_ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["iss", "aud", "iat", "exp", "repository", "run_id"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as error:
            raise Unverified(f"OIDC token: {error}") from error
        try:
            return Claims.model_validate(payload)
        except ValidationError as error:
            raise Unverified(f"OIDC token lacks a claim modelrun needs: {validation_problems(error)[0]}") from error
