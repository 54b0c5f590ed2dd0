"""COS's wire format, as the server speaks it: the parsed request, the XML answers and the errors.

A request names its bucket in the Host header (`<bucket>.cos.<region>.myqcloud.com`, kept by the SDK
when it is pointed at an IP); a bare address reaches the default bucket. Errors are `CosError`s, which
the server answers as `<Error>` with `Code`, `Message`, `Resource` and `RequestId`, the fields the SDK
reads into `CosServiceError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape


class CosError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Request:
    method: str
    bucket: str
    key: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)


def parse_request(
    *, method: str, target: str, host: str, headers: Iterable[tuple[str, str]], body: bytes, default_bucket: str
) -> Request:
    """`target` is the request line's path and query, `host` the Host header."""
    split = urlsplit(target)
    path = unquote(split.path)
    hostname = host.rsplit(":", 1)[0]
    bucket = hostname.split(".cos.", 1)[0] if ".cos." in hostname else default_bucket
    return Request(
        method=method,
        bucket=bucket,
        key=path.lstrip("/"),
        path=path,
        query=parse_qsl(split.query, keep_blank_values=True),
        headers={name.lower(): value for name, value in headers},
        body=body,
    )


def bucket_domain(bucket: str, region: str) -> str:
    return f"{bucket}.cos.{region}.myqcloud.com"


def xml(tag: str, content: object) -> str:
    """`content` as XML: a dict gives child elements, a list repeats the element, anything else is text."""
    if isinstance(content, list):
        return "".join(xml(tag, item) for item in content)
    if isinstance(content, dict):
        inner = "".join(xml(name, value) for name, value in content.items())
    else:
        inner = escape(str(content))
    return f"<{tag}>{inner}</{tag}>"


def xml_document(tag: str, content: object) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>' + xml(tag, content)).encode()


def error_body(error: CosError, *, resource: str, request_id: str) -> bytes:
    return xml(
        "Error", {"Code": error.code, "Message": error.message, "Resource": resource, "RequestId": request_id}
    ).encode()
