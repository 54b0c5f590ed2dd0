"""The COS request signature check (https://cloud.tencent.com/document/product/436/7778).

The rules, as cos-python-sdk-v5 signs and this server checks them:

- The fields travel in the `Authorization` header (`q-sign-algorithm=sha1&q-ak=...&...`) or, for a
  presigned URL, in the query string. A request with neither is anonymous (allowed only where the
  bucket ACL says so); a request with some fields missing, or an algorithm other than `sha1`, is
  AccessDenied.
- `q-ak` must be the server's SecretId (else InvalidAccessKeyId); `q-sign-time` and `q-key-time` are
  `start;end` Unix times that must both contain now (else "Request has expired").
- Every name in `q-header-list` and `q-url-param-list` must be present in the request. Names are
  lower-cased, and names and values percent-encoded keeping only `-_.~` literal; the host is signed
  without its port.
- HttpString = method (lower case) \\n path \\n sorted k=v params joined by & \\n sorted k=v headers \\n
  StringToSign = "sha1\\n" KeyTime "\\n" SHA1(HttpString) "\\n"
  SignKey = HMAC-SHA1(SecretKey, KeyTime); q-signature = HMAC-SHA1(SignKey, StringToSign), in hex.
- A mismatch is SignatureDoesNotMatch (403).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

from devtools.cos_server.wire import CosError, Request

_FIELDS = ("q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time", "q-header-list", "q-url-param-list")


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def cos_signature(
    *,
    secret_key: str,
    method: str,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    key_time: str,
) -> str:
    """The q-signature for already encoded, lower-cased `params` and `headers` (name -> value)."""
    http_string = "\n".join(
        [
            method.lower(),
            path,
            "&".join(f"{k}={v}" for k, v in sorted(params.items())),
            "&".join(f"{k}={v}" for k, v in sorted(headers.items())),
            "",
        ]
    )
    # SHA-1 is what the COS protocol prescribes; the secret is protected by the HMAC around it.
    digest = hashlib.sha1(http_string.encode()).hexdigest()  # noqa: S324
    string_to_sign = f"sha1\n{key_time}\n{digest}\n"
    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    return hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()


def verify_signature(request: Request, *, secret_id: str, secret_key: str) -> bool:
    """True when signed by this key pair, False when anonymous; raises CosError when the signature is bad."""
    header = request.headers.get("authorization", "")
    if header:
        fields = dict(part.split("=", 1) for part in header.split("&") if "=" in part)
    elif request.param("q-signature") is not None:
        fields = {k: v for k, v in request.query if k.startswith("q-")}
    else:
        return False
    if any(name not in fields for name in (*_FIELDS, "q-signature")) or fields["q-sign-algorithm"] != "sha1":
        raise CosError(403, "AccessDenied", "Authorization is malformed.")
    if fields["q-ak"] != secret_id:
        raise CosError(403, "InvalidAccessKeyId", "The access key Id format you provided is invalid.")
    try:
        windows = [tuple(int(t) for t in fields[name].split(";")) for name in ("q-sign-time", "q-key-time")]
    except ValueError:
        raise CosError(403, "AccessDenied", "q-sign-time or q-key-time is malformed.") from None
    now = time.time()
    if any(len(w) != 2 or not w[0] <= now <= w[1] for w in windows):
        raise CosError(403, "AccessDenied", "Request has expired")

    headers = {_encode(k).lower(): _encode(v) for k, v in request.headers.items()}
    # The SDK signs the host name without a port (it is the bucket domain, or the IP of a presigned URL).
    if "host" in headers:
        headers["host"] = _encode(request.headers["host"].rsplit(":", 1)[0])
    params = {_encode(k).lower(): _encode(v) for k, v in request.query}
    signed_headers = [h for h in fields["q-header-list"].split(";") if h]
    signed_params = [p for p in fields["q-url-param-list"].split(";") if p]
    if any(h not in headers for h in signed_headers) or any(p not in params for p in signed_params):
        raise CosError(403, "SignatureDoesNotMatch", "A signed header or parameter is missing.")
    expected = cos_signature(
        secret_key=secret_key,
        method=request.method,
        path=request.path,
        params={p: params[p] for p in signed_params},
        headers={h: headers[h] for h in signed_headers},
        key_time=fields["q-key-time"],
    )
    if not hmac.compare_digest(expected, fields["q-signature"]):
        raise CosError(403, "SignatureDoesNotMatch", "The calculated signature does not match the provided one.")
    return True
