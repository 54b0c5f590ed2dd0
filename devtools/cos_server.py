"""A local stand-in for Tencent COS and the parts of Cloud Infinite (CI) the product uses.

It speaks the wire protocol that cos-python-sdk-v5 speaks, so tests drive the real SDK over real HTTP:
object PUT/GET/HEAD/DELETE, the COS XML errors, the SDK's HMAC-SHA1 request signature (header or
presigned query string), private and public-read buckets, image moderation
(`?ci-process=sensitive-content-recognition`) and processing on upload (`Pic-Operations` with
`ci-process=GoodsMatting` and `imageMogr2` sharpen/bright/contrast/format/quality), done with Pillow.

Point the SDK at it with `CosConfig(..., Scheme="http", IP="127.0.0.1", Port=port)`. The SDK then keeps
`<bucket>.cos.<region>.myqcloud.com` in the Host header, which names the bucket; a request whose Host is
the bare address (a presigned URL opened by a browser or `requests`) reaches the default bucket.

Tests steer it through `CosState` in-process or through the JSON control API under `/_cos/`
(moderation verdicts, faults, bucket ACLs), which needs no signature and is never part of a key space
the product uses.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageStat

CONTROL_PREFIX = "/_cos/"
MODERATION_PROCESS = "sensitive-content-recognition"
MATTING_PROCESS = "GoodsMatting"
MAX_PIC_RULES = 5

Acl = Literal["private", "public-read"]
FaultMode = Literal["none", "error", "refuse", "garbage"]
FaultScope = Literal["all", "moderation"]

_FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg"), "jpeg": ("JPEG", "image/jpeg")}
_FORMATS["webp"] = ("WEBP", "image/webp")
_CONTENT_TYPES = {pil: ctype for pil, ctype in _FORMATS.values()}

# Matting: a pixel this close to the background colour (max channel difference) is background, this far
# is subject; in between it is feathered so edges are not jagged.
_MATTE_LOW = 24
_MATTE_HIGH = 56


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    content_type: str
    etag: str
    last_modified: float


@dataclass(frozen=True)
class ModerationVerdict:
    result: int
    label: str = "Normal"
    score: int = 0
    # "Failed" answers like a moderation job that did not complete: Result 0 with an error Code.
    state: str = "Success"


class CosError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class CosState:
    """Everything the server knows; thread-safe, shared by all request threads."""

    def __init__(self, *, secret_id: str, secret_key: str, region: str, default_bucket: str) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.region = region
        self.default_bucket = default_bucket
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[str, StoredObject]] = {}
        self._acls: dict[str, Acl] = {}
        self._moderation_rules: list[tuple[str, ModerationVerdict]] = []
        self._moderation_default = ModerationVerdict(result=0)
        self._fault: tuple[FaultMode, FaultScope] = ("none", "all")
        self.create_bucket(default_bucket)

    # Buckets and objects

    def create_bucket(self, name: str, acl: Acl = "private") -> None:
        with self._lock:
            self._buckets.setdefault(name, {})
            self._acls[name] = acl

    def set_acl(self, bucket: str, acl: Acl) -> None:
        with self._lock:
            self._require_bucket(bucket)
            self._acls[bucket] = acl

    def acl(self, bucket: str) -> Acl:
        with self._lock:
            self._require_bucket(bucket)
            return self._acls[bucket]

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> StoredObject:
        obj = StoredObject(
            data=data,
            content_type=content_type,
            etag='"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"',
            last_modified=time.time(),
        )
        with self._lock:
            self._require_bucket(bucket)[key] = obj
        return obj

    def get(self, bucket: str, key: str) -> StoredObject | None:
        with self._lock:
            return self._require_bucket(bucket).get(key)

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self._require_bucket(bucket).pop(key, None)

    def keys(self, bucket: str | None = None) -> list[str]:
        with self._lock:
            return sorted(self._require_bucket(bucket or self.default_bucket))

    def _require_bucket(self, bucket: str) -> dict[str, StoredObject]:
        try:
            return self._buckets[bucket]
        except KeyError:
            raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.") from None

    # Moderation and faults

    def set_moderation(
        self, result: int, *, key_substring: str = "", label: str = "", score: int = 0, state: str = "Success"
    ) -> None:
        """Answer `result` (0 normal, 1 block, 2 review) for keys containing `key_substring` ("": any key)."""
        if result not in (0, 1, 2):
            raise ValueError(f"moderation result must be 0, 1 or 2, not {result!r}")
        if state not in ("Success", "Failed"):
            raise ValueError(f"moderation state must be Success or Failed, not {state!r}")
        verdict = ModerationVerdict(
            result=result,
            label=label or ("Normal" if result == 0 else "Porn"),
            score=score or 90 * bool(result),
            state=state,
        )
        with self._lock:
            if key_substring:
                self._moderation_rules.insert(0, (key_substring, verdict))
            else:
                self._moderation_default = verdict

    def moderation_for(self, key: str) -> ModerationVerdict:
        with self._lock:
            for substring, verdict in self._moderation_rules:
                if substring in key:
                    return verdict
            return self._moderation_default

    def set_fault(self, mode: FaultMode, scope: FaultScope = "all") -> None:
        """`error` answers 503, `refuse` drops the connection, `garbage` answers 200 with a non-XML body."""
        with self._lock:
            self._fault = (mode, scope)

    def fault_for(self, *, moderation: bool) -> FaultMode:
        with self._lock:
            mode, scope = self._fault
        return mode if scope == "all" or moderation else "none"

    def reset(self) -> None:
        with self._lock:
            self._moderation_rules.clear()
            self._moderation_default = ModerationVerdict(result=0)
            self._fault = ("none", "all")
            for bucket in self._buckets:
                self._buckets[bucket].clear()
                self._acls[bucket] = "private"


# Signature (https://cloud.tencent.com/document/product/436/7778): the client signs
#   HttpString = method \n path \n sorted(k=v params) \n sorted(k=v headers) \n
# with SignKey = HMAC-SHA1(SecretKey, KeyTime) and StringToSign = "sha1\n" KeyTime "\n" SHA1(HttpString) "\n",
# names lower-cased and names and values percent-encoded keeping only -_.~ literal.


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


@dataclass(frozen=True)
class _Request:
    method: str
    bucket: str
    key: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)


def _verify_signature(state: CosState, request: _Request) -> bool:
    """True when signed by our key pair, False when anonymous; raises CosError when the signature is bad."""
    header = request.headers.get("authorization", "")
    if header:
        fields = dict(part.split("=", 1) for part in header.split("&") if "=" in part)
    elif request.param("q-signature") is not None:
        fields = {k: v for k, v in request.query if k.startswith("q-")}
    else:
        return False
    required = ("q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time", "q-header-list", "q-url-param-list")
    if any(name not in fields for name in (*required, "q-signature")) or fields["q-sign-algorithm"] != "sha1":
        raise CosError(403, "AccessDenied", "Authorization is malformed.")
    if fields["q-ak"] != state.secret_id:
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
        secret_key=state.secret_key,
        method=request.method,
        path=request.path,
        params={p: params[p] for p in signed_params},
        headers={h: headers[h] for h in signed_headers},
        key_time=fields["q-key-time"],
    )
    if not hmac.compare_digest(expected, fields["q-signature"]):
        raise CosError(403, "SignatureDoesNotMatch", "The calculated signature does not match the provided one.")
    return True


# Image processing


def _open_image(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise CosError(400, "InvalidImageFormat", f"The object is not an image the service can read: {exc}") from None
    return image


def _encode_image(image: Image.Image, pil_format: str, quality: int) -> bytes:
    if pil_format == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format=pil_format, **({"quality": quality} if pil_format in ("JPEG", "WEBP") else {}))
    return out.getvalue()


def _background_colour(image: Image.Image) -> tuple[int, int, int]:
    """The median colour of the one-pixel border: a product shot has its backdrop on every edge."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    strips = [
        (0, 0, width, 1),
        (0, height - 1, width, height),
        (0, 0, 1, height),
        (width - 1, 0, width, height),
    ]
    histogram = [0] * 768
    for box in strips:
        for index, count in enumerate(rgb.crop(box).histogram()):
            histogram[index] += count
    half = sum(histogram[:256]) / 2

    def band_median(band: int) -> int:
        seen = 0
        for value in range(256):
            seen += histogram[band * 256 + value]
            if seen >= half:
                return value
        return 255

    return band_median(0), band_median(1), band_median(2)


def goods_matting(image: Image.Image) -> Image.Image:
    """The subject on transparency: pixels that differ enough from the backdrop colour stay opaque."""
    rgb = image.convert("RGB")
    backdrop = Image.new("RGB", rgb.size, _background_colour(rgb))
    red, green, blue = ImageChops.difference(rgb, backdrop).split()
    distance = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    span = _MATTE_HIGH - _MATTE_LOW
    alpha = distance.point(
        lambda d: 0 if d <= _MATTE_LOW else 255 if d >= _MATTE_HIGH else (d - _MATTE_LOW) * 255 // span
    )
    cutout = rgb.convert("RGBA")
    cutout.putalpha(alpha)
    return cutout


def _sharpen(image: Image.Image, amount: int) -> Image.Image:
    return image.filter(ImageFilter.UnsharpMask(radius=2, percent=amount * 2, threshold=2))


def _brighten(image: Image.Image, amount: int) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(1 + amount / 100)


def _contrast(image: Image.Image, amount: int) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(1 + amount / 100)


def _on_colour_channels(
    image: Image.Image, operation: Callable[[Image.Image, int], Image.Image], amount: int
) -> Image.Image:
    """Apply `operation` to the colour and keep any alpha as it was."""
    if image.mode == "RGBA":
        result = operation(image.convert("RGB"), amount).convert("RGBA")
        result.putalpha(image.getchannel("A"))
        return result
    return operation(image.convert("RGB"), amount)


def _int_param(op: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise CosError(400, "InvalidArgument", f"imageMogr2/{op} takes an integer in [{low}, {high}], not {raw!r}")
    return value


def image_mogr2(image: Image.Image, pil_format: str, ops: str) -> tuple[Image.Image, str, int]:
    """Run `imageMogr2/<op>/<value>/...`; returns the image, the output format and the quality."""
    parts = [p for p in ops.split("/") if p]
    if len(parts) % 2:
        raise CosError(400, "InvalidArgument", f"imageMogr2 parameters come in pairs: {ops!r}")
    quality = 90
    for op, raw in zip(parts[::2], parts[1::2], strict=True):
        if op == "sharpen":
            image = _on_colour_channels(image, _sharpen, _int_param(op, raw, 10, 300))
        elif op == "bright":
            image = _on_colour_channels(image, _brighten, _int_param(op, raw, -100, 100))
        elif op == "contrast":
            image = _on_colour_channels(image, _contrast, _int_param(op, raw, -100, 100))
        elif op == "quality":
            quality = _int_param(op, raw, 1, 100)
        elif op == "format":
            if raw.lower() not in _FORMATS:
                raise CosError(400, "InvalidArgument", f"imageMogr2/format does not support {raw!r}")
            pil_format = _FORMATS[raw.lower()][0]
        elif op == "ignore-error":
            continue
        else:
            raise CosError(400, "InvalidArgument", f"imageMogr2/{op} is not supported by this server")
    return image, pil_format, quality


def process_rule(data: bytes, rule: str) -> tuple[bytes, str, int, Image.Image]:
    """Apply one Pic-Operations rule; returns the encoded result, its PIL format, quality and image."""
    image = _open_image(data)
    pil_format = image.format or "PNG"
    if rule.startswith("ci-process="):
        process = dict(parse_qsl(rule, keep_blank_values=True))
        if process.get("ci-process") != MATTING_PROCESS:
            raise CosError(400, "InvalidArgument", f"unsupported ci-process rule {rule!r}")
        result, pil_format, quality = goods_matting(image), "PNG", 100
    elif rule.startswith("imageMogr2/"):
        result, pil_format, quality = image_mogr2(image, pil_format, rule[len("imageMogr2/") :])
    else:
        raise CosError(400, "InvalidArgument", f"unsupported processing rule {rule!r}")
    return _encode_image(result, pil_format, quality), pil_format, quality, result


def _xml(tag: str, content: object) -> str:
    """`content` as XML: a dict gives child elements, a list repeats the element, anything else is text."""
    if isinstance(content, list):
        return "".join(_xml(tag, item) for item in content)
    if isinstance(content, dict):
        inner = "".join(_xml(name, value) for name, value in content.items())
    else:
        inner = escape(str(content))
    return f"<{tag}>{inner}</{tag}>"


# HTTP


class CosRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tencent-cos-local"
    server: CosHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _parse(self, body: bytes) -> _Request:
        split = urlsplit(self.path)
        path = unquote(split.path)
        host = self.headers.get("Host", "")
        hostname = host.rsplit(":", 1)[0]
        bucket = hostname.split(".cos.", 1)[0] if ".cos." in hostname else self.server.state.default_bucket
        return _Request(
            method=self.command,
            bucket=bucket,
            key=path.lstrip("/"),
            path=path,
            query=parse_qsl(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )

    def _dispatch(self) -> None:
        body = self._read_body()
        request = self._parse(body)
        request_id = uuid.uuid4().hex
        try:
            if request.path.startswith(CONTROL_PREFIX):
                self._control(request)
                return
            mode = self.server.state.fault_for(moderation=request.param("ci-process") == MODERATION_PROCESS)
            if mode == "refuse":
                self.close_connection = True
                return
            if mode == "error":
                raise CosError(503, "ServiceUnavailable", "Please reduce your request rate.")
            if mode == "garbage":
                self._send(200, b"<html>gateway", "text/html", request_id=request_id)
                return
            self._handle(request, request_id)
        except CosError as error:
            self._send_error(error, request, request_id)

    def _handle(self, request: _Request, request_id: str) -> None:
        state = self.server.state
        if not request.key:
            raise CosError(400, "InvalidRequest", "This server only serves object requests.")
        signed = _verify_signature(state, request)
        ci_process = request.param("ci-process")
        anonymous_read = request.method in ("GET", "HEAD") and ci_process is None
        if not signed and not (anonymous_read and state.acl(request.bucket) == "public-read"):
            raise CosError(403, "AccessDenied", "Access Denied.")

        if request.method == "PUT":
            self._put(request, request_id)
        elif request.method == "DELETE":
            state.delete(request.bucket, request.key)
            self._send(204, b"", None, request_id=request_id)
        elif request.method in ("GET", "HEAD"):
            obj = state.get(request.bucket, request.key)
            if obj is None:
                raise CosError(404, "NoSuchKey", "The specified key does not exist.")
            if ci_process == MODERATION_PROCESS:
                self._moderate(request, obj, request_id)
            elif ci_process is not None:
                raise CosError(400, "InvalidArgument", f"ci-process {ci_process!r} is not supported")
            else:
                self._send(
                    200,
                    obj.data,
                    obj.content_type,
                    request_id=request_id,
                    extra={"ETag": obj.etag, "Last-Modified": formatdate(obj.last_modified, usegmt=True)},
                )
        else:
            raise CosError(405, "MethodNotAllowed", f"{request.method} is not allowed on an object.")

    def _put(self, request: _Request, request_id: str) -> None:
        state = self.server.state
        operations = request.headers.get("pic-operations")
        results: list[dict[str, object]] = []
        if operations is not None:
            results = self._pic_operations(request, operations)
        content_type = request.headers.get("content-type") or "application/octet-stream"
        original = state.put(request.bucket, request.key, request.body, content_type)
        if operations is None:
            self._send(200, b"", None, request_id=request_id, extra={"ETag": original.etag})
            return
        info: dict[str, object] = {
            "Key": request.key,
            "Location": f"{self._domain(request.bucket)}/{request.key}",
        }
        if json.loads(operations).get("is_pic_info") == 1:
            image = _open_image(request.body)
            info["ImageInfo"] = {
                "Format": (image.format or "").lower(),
                "Width": image.width,
                "Height": image.height,
                "Quality": 100,
                "Ave": "0x" + "".join(f"{round(c):02x}" for c in ImageStat.Stat(image.convert("RGB")).mean),
                "Orientation": 0,
            }
        info["ETag"] = original.etag
        xml = _xml("UploadResult", {"OriginalInfo": info, "ProcessResults": {"Object": results}})
        self._send(
            200,
            ('<?xml version="1.0" encoding="UTF-8"?>' + xml).encode(),
            "application/xml",
            request_id=request_id,
            extra={"ETag": original.etag},
        )

    def _pic_operations(self, request: _Request, operations: str) -> list[dict[str, object]]:
        try:
            parsed = json.loads(operations)
            rules = parsed.get("rules") or []
            if not isinstance(rules, list) or len(rules) > MAX_PIC_RULES:
                raise ValueError("rules must be a list of at most five")
        except (ValueError, AttributeError) as exc:
            raise CosError(400, "InvalidArgument", f"Pic-Operations is malformed: {exc}") from None
        directory = request.key.rsplit("/", 1)[0] + "/" if "/" in request.key else ""
        results = []
        for rule in rules:
            fileid, text = str(rule.get("fileid", "")), str(rule.get("rule", ""))
            if not fileid or fileid.endswith("/") or not text:
                raise CosError(400, "InvalidArgument", f"Pic-Operations rule is incomplete: {rule!r}")
            # A leading slash is a path from the bucket root; otherwise it is next to the uploaded object.
            target = fileid[1:] if fileid.startswith("/") else directory + fileid
            bucket = str(rule.get("bucket") or request.bucket)
            data, pil_format, quality, image = process_rule(request.body, text)
            stored = self.server.state.put(bucket, target, data, _CONTENT_TYPES[pil_format])
            results.append(
                {
                    "Key": target,
                    "Location": f"{self._domain(bucket)}/{target}",
                    "Format": pil_format.lower().replace("jpeg", "jpg"),
                    "Width": image.width,
                    "Height": image.height,
                    "Size": len(data),
                    "Quality": quality,
                    "ETag": stored.etag,
                }
            )
        return results

    def _moderate(self, request: _Request, obj: StoredObject, request_id: str) -> None:
        _open_image(obj.data)
        verdict = self.server.state.moderation_for(request.key)
        hit = verdict.result != 0
        categories = {
            name: {
                "Code": 0,
                "Msg": "OK",
                "HitFlag": int(hit and name == verdict.label + "Info"),
                "Score": verdict.score if hit and name == verdict.label + "Info" else 0,
                "Label": verdict.label if hit and name == verdict.label + "Info" else "",
            }
            for name in ("PornInfo", "TerroristInfo", "PoliticsInfo", "AdsInfo")
        }
        body = _xml(
            "RecognitionResult",
            {
                "JobId": "si" + request_id[:24],
                "State": verdict.state,
                **({"Code": "InternalError", "Message": "moderation job failed"} if verdict.state != "Success" else {}),
                "Object": request.key,
                "DataId": request.param("dataid") or "",
                "Result": verdict.result,
                "Label": verdict.label,
                "Category": verdict.label if hit else "",
                "SubLabel": "",
                "Score": verdict.score,
                **categories,
            },
        )
        self._send(200, body.encode(), "application/xml", request_id=request_id)

    def _control(self, request: _Request) -> None:
        """JSON control API: POST /_cos/moderation, /_cos/fault, /_cos/acl, /_cos/reset."""
        state = self.server.state
        try:
            payload = json.loads(request.body or b"{}")
            action = request.path[len(CONTROL_PREFIX) :]
            if request.method != "POST":
                raise ValueError("control requests are POSTs")
            if action == "moderation":
                state.set_moderation(
                    int(payload["result"]),
                    key_substring=payload.get("key_substring", ""),
                    label=payload.get("label", ""),
                    score=int(payload.get("score", 0)),
                    state=payload.get("state", "Success"),
                )
            elif action == "fault":
                state.set_fault(payload["mode"], payload.get("scope", "all"))
            elif action == "acl":
                state.create_bucket(payload.get("bucket") or state.default_bucket, payload["acl"])
            elif action == "reset":
                state.reset()
            else:
                raise ValueError(f"unknown control action {action!r}")
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, json.dumps({"error": str(exc)}).encode(), "application/json", request_id="control")
            return
        self._send(200, b'{"ok": true}', "application/json", request_id="control")

    def _domain(self, bucket: str) -> str:
        return f"{bucket}.cos.{self.server.state.region}.myqcloud.com"

    def _send_error(self, error: CosError, request: _Request, request_id: str) -> None:
        body = _xml(
            "Error",
            {"Code": error.code, "Message": error.message, "Resource": request.path, "RequestId": request_id},
        )
        self._send(error.status, body.encode(), "application/xml", request_id=request_id)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        *,
        request_id: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-cos-request-id", request_id)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and status != 204:
            self.wfile.write(body)


class CosHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: CosState, *, verbose: bool = False) -> None:
        super().__init__(address, CosRequestHandler)
        self.state = state
        self.verbose = verbose


def make_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    secret_id: str,
    secret_key: str,
    region: str = "ap-guangzhou",
    bucket: str = "photos-1250000000",
    verbose: bool = False,
) -> CosHTTPServer:
    state = CosState(secret_id=secret_id, secret_key=secret_key, region=region, default_bucket=bucket)
    return CosHTTPServer((host, port), state, verbose=verbose)


def run(
    port: int,
    *,
    secret_id: str,
    secret_key: str,
    region: str = "ap-guangzhou",
    bucket: str = "photos-1250000000",
    acl: Acl = "private",
    host: str = "127.0.0.1",
) -> None:
    server = make_server(
        host=host,
        port=port,
        secret_id=secret_id,
        secret_key=secret_key,
        region=region,
        bucket=bucket,
        verbose=True,
    )
    server.state.set_acl(bucket, acl)
    print(f"COS-compatible server on http://{host}:{server.server_address[1]} ({acl} bucket {bucket}, {region})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local COS-compatible server for development and tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret-id", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--region", default="ap-guangzhou")
    parser.add_argument("--bucket", default="photos-1250000000")
    parser.add_argument("--public-read", action="store_true", help="let anonymous GETs read the bucket")
    args = parser.parse_args(argv)
    run(
        args.port,
        secret_id=args.secret_id,
        secret_key=args.secret_key,
        region=args.region,
        bucket=args.bucket,
        acl="public-read" if args.public_read else "private",
        host=args.host,
    )


if __name__ == "__main__":
    main()
