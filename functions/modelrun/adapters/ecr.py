"""ECR: the tags of an image, by its digest."""

from __future__ import annotations

from botocore.exceptions import ClientError

from modelrun.adapters.aws import client


class EcrImages:
    def tags(self, image: str) -> list[str]:
        """The image's tags (``REGISTRY/NAME@sha256:…``); none if ECR does not know it."""
        name, _, digest = image.split("/", 1)[1].partition("@")
        try:
            found = client("ecr").describe_images(repositoryName=name, imageIds=[{"imageDigest": digest}])
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return []
            raise
        return [tag for detail in found["imageDetails"] for tag in detail.get("imageTags", [])]
