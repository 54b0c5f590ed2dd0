"""The Storage backend on Tencent COS, through cos-python-sdk-v5."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlencode, urlsplit

from qcloud_cos import CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from core.cos import cos_base_url, cos_client_from_settings, cos_settings
from media.base import StorageError

PRESIGNED_URL_SECONDS = 3600


@contextmanager
def _translated(key: str) -> Iterator[None]:
    """SDK errors as the OSError family the callers handle: a missing object is FileNotFoundError."""
    try:
        yield
    except CosServiceError as error:
        if error.get_status_code() == 404:
            raise FileNotFoundError(key) from error
        raise StorageError(f"COS {error.get_status_code()} {error.get_error_code()} on {key}") from error
    except CosClientError as error:
        raise StorageError(f"COS unreachable for {key}: {error}") from error


class CosStorage:
    """Objects in one bucket, addressed as `base_url/<key>`; a private bucket's URLs are presigned GETs."""

    def __init__(
        self,
        *,
        client: CosS3Client,
        bucket: str,
        base_url: str,
        private: bool = False,
        url_expires: int = PRESIGNED_URL_SECONDS,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.base_url = base_url.rstrip("/")
        self.private = private
        self.url_expires = url_expires

    @classmethod
    def from_settings(cls) -> CosStorage:
        conf = cos_settings()
        return cls(
            client=cos_client_from_settings(),
            bucket=conf.bucket,
            base_url=cos_base_url(bucket=conf.bucket, region=conf.region, endpoint_url=conf.endpoint_url),
            private=conf.private,
        )

    def save(self, *, key: str, data: bytes, content_type: str) -> None:
        with _translated(key):
            self.client.put_object(Bucket=self.bucket, Body=data, Key=key, ContentType=content_type)

    def read(self, *, key: str) -> bytes:
        with _translated(key):
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return b"".join(response["Body"].get_stream(chunk_size=64 * 1024))

    def delete(self, *, key: str) -> None:
        with _translated(key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def exists(self, *, key: str) -> bool:
        try:
            with _translated(key):
                self.client.head_object(Bucket=self.bucket, Key=key)
        except FileNotFoundError:
            return False
        return True

    def url(self, *, key: str) -> str:
        return f"{self.base_url}/{quote(key, safe='/-_.~')}"

    def signed(self, url: str) -> str:
        key = self.key_for_url(url)
        if not self.private or key is None:
            return url
        # Signed when handed out, not when stored: a stored signature would expire with the hour.
        # The SDK signs the host it would address (the endpoint's host or the bucket domain), which is
        # the host of base_url, so the signature holds for this URL.
        authorization = self.client.get_auth(Method="GET", Bucket=self.bucket, Key=key, Expired=self.url_expires)
        return self.url(key=key) + "?" + urlencode(dict(field.split("=", 1) for field in authorization.split("&")))

    def key_for_url(self, url: str) -> str | None:
        prefix = self.base_url + "/"
        parts = urlsplit(url)
        bare = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if not bare.startswith(prefix) or len(bare) == len(prefix):
            return None
        return unquote(bare[len(prefix) :])
