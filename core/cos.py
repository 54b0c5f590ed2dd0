"""Tencent COS access shared by media storage and the CI engines: one place reads the COS_* settings."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from qcloud_cos import CosConfig, CosS3Client

# The SDK's own default: three retries after 1, 2 and 3 s for network errors and 5xx.
SDK_DEFAULT_RETRY = 3


@dataclass(frozen=True)
class CosSettings:
    secret_id: str
    secret_key: str
    region: str
    bucket: str
    endpoint_url: str
    private: bool


def cos_settings() -> CosSettings:
    """The COS_* settings, checked; a missing one raises ImproperlyConfigured naming it."""
    values = {}
    for name in ("COS_SECRET_ID", "COS_SECRET_KEY", "COS_REGION", "COS_BUCKET"):
        value = getattr(settings, name, "")
        if not value:
            raise ImproperlyConfigured(f"{name} must be set to use Tencent COS")
        values[name] = str(value)
    endpoint_url = str(getattr(settings, "COS_ENDPOINT_URL", "") or "").rstrip("/")
    if endpoint_url:
        _parse_endpoint(endpoint_url)
    return CosSettings(
        secret_id=values["COS_SECRET_ID"],
        secret_key=values["COS_SECRET_KEY"],
        region=values["COS_REGION"],
        bucket=values["COS_BUCKET"],
        endpoint_url=endpoint_url,
        private=bool(getattr(settings, "COS_PRIVATE", False)),
    )


def _parse_endpoint(endpoint_url: str) -> tuple[str, str, int]:
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ImproperlyConfigured(
            f"COS_ENDPOINT_URL must be scheme://host[:port], e.g. http://127.0.0.1:9000, not {endpoint_url!r}"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ImproperlyConfigured(f"COS_ENDPOINT_URL has an invalid port: {endpoint_url!r}") from None
    return parts.scheme, parts.hostname, port


def cos_client(*, secret_id: str, secret_key: str, region: str, endpoint_url: str = "") -> CosS3Client:
    """An SDK client; with `endpoint_url` every request goes to that address, bucket still named by Host."""
    if not endpoint_url:
        return CosS3Client(
            CosConfig(Region=region, SecretId=secret_id, SecretKey=secret_key, Scheme="https"),
            retry=SDK_DEFAULT_RETRY,
        )
    scheme, host, port = _parse_endpoint(endpoint_url)
    config = CosConfig(Region=region, SecretId=secret_id, SecretKey=secret_key, Scheme=scheme, IP=host, Port=port)
    # A local or private endpoint answers at once or not at all; the SDK's sleeping retries only slow tests.
    return CosS3Client(config, retry=0)


def cos_client_from_settings() -> CosS3Client:
    conf = cos_settings()
    return cos_client(
        secret_id=conf.secret_id,
        secret_key=conf.secret_key,
        region=conf.region,
        endpoint_url=conf.endpoint_url,
    )


def cos_base_url(*, bucket: str, region: str, endpoint_url: str = "") -> str:
    """Where objects are addressed: the endpoint when one is set, else the bucket's own domain."""
    return endpoint_url.rstrip("/") if endpoint_url else f"https://{bucket}.cos.{region}.myqcloud.com"
