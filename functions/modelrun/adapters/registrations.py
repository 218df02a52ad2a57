"""The repositories' registrations in SSM Parameter Store (written by repository.yaml)."""

from __future__ import annotations

import time

from botocore.exceptions import ClientError
from pydantic import ValidationError

from modelrun.adapters.aws import client
from modelrun.domain.registration import Registration
from modelrun.errors import Rejected

# A redeployed repository stack (new grants) is seen within this long; a burst of requests for
# one repository costs one read.
CACHE_SECONDS = 60.0


class Registrations:
    def __init__(self, path: str) -> None:
        self.path = path if path.endswith("/") else f"{path}/"
        self._cache: dict[str, tuple[float, Registration]] = {}

    def get(self, repository: str) -> Registration:
        """The repository's registration; Rejected (a clear reason) when it has none or it is broken."""
        cached = self._cache.get(repository.lower())
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        name = f"{self.path}{repository}"
        try:
            value = client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ParameterNotFound":
                raise Rejected(
                    f"repository {repository} has no registration ({name}): "
                    "deploy repository.yaml for it (docs/adopt.md)"
                ) from None
            raise
        try:
            registration = Registration.model_validate_json(value)
        except ValidationError as error:
            raise Rejected(f"repository {repository}: its registration {name} is invalid: {error}") from None
        if registration.repository.lower() != repository.lower():
            raise Rejected(f"repository {repository}: its registration {name} is for {registration.repository}")
        self._cache[repository.lower()] = (time.monotonic(), registration)
        return registration
