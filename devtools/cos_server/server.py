"""The COS server's HTTP side: the request handler, `CosHTTPServer`, `make_server`, and the command line.

Every request goes: control API (`/_cos/...`, JSON, unsigned) or else fault injection, then the
signature and ACL check, then object PUT/GET/HEAD/DELETE or a CI process. Errors answer as COS XML.

    python -m devtools.cos_server --port 9000 --secret-id AKID... --secret-key ... [--public-read]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from devtools.cos_server import ci
from devtools.cos_server.signature import verify_signature
from devtools.cos_server.state import Acl, CosState
from devtools.cos_server.wire import CosError, Request, error_body, parse_request

CONTROL_PREFIX = "/_cos/"


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

    def _dispatch(self) -> None:
        request = parse_request(
            method=self.command,
            target=self.path,
            host=self.headers.get("Host", ""),
            headers=self.headers.items(),
            body=self._read_body(),
            default_bucket=self.server.state.default_bucket,
        )
        request_id = uuid.uuid4().hex
        try:
            if request.path.startswith(CONTROL_PREFIX):
                self._control(request)
                return
            mode = self.server.state.fault_for(moderation=request.param("ci-process") == ci.MODERATION_PROCESS)
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
            body = error_body(error, resource=request.path, request_id=request_id)
            self._send(error.status, body, "application/xml", request_id=request_id)

    def _handle(self, request: Request, request_id: str) -> None:
        state = self.server.state
        if not request.key:
            raise CosError(400, "InvalidRequest", "This server only serves object requests.")
        signed = verify_signature(request, secret_id=state.secret_id, secret_key=state.secret_key)
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
            if ci_process == ci.MODERATION_PROCESS:
                body = ci.moderate(state, request, obj.data, job_id="si" + request_id[:24])
                self._send(200, body, "application/xml", request_id=request_id)
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

    def _put(self, request: Request, request_id: str) -> None:
        state = self.server.state
        operations = request.headers.get("pic-operations")
        # A bad rule must fail the upload before the original is stored.
        results = [] if operations is None else ci.apply_pic_operations(state, request, operations)
        content_type = request.headers.get("content-type") or "application/octet-stream"
        original = state.put(request.bucket, request.key, request.body, content_type)
        if operations is None:
            self._send(200, b"", None, request_id=request_id, extra={"ETag": original.etag})
            return
        body = ci.upload_result(request, operations, region=state.region, etag=original.etag, results=results)
        self._send(200, body, "application/xml", request_id=request_id, extra={"ETag": original.etag})

    def _control(self, request: Request) -> None:
        """JSON control API: POST /_cos/moderation, /_cos/fault, /_cos/acl, /_cos/reset, and
        /_cos/keys (the keys of a bucket, `{"bucket"?}` → `{"keys": [...]}`, unsigned)."""
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
            elif action == "keys":
                keys = state.keys(payload.get("bucket") or state.default_bucket)
                self._send(200, json.dumps({"keys": keys}).encode(), "application/json", request_id="control")
                return
            else:
                raise ValueError(f"unknown control action {action!r}")
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, json.dumps({"error": str(exc)}).encode(), "application/json", request_id="control")
            return
        self._send(200, b'{"ok": true}', "application/json", request_id="control")

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
    # Leaving the `with` closes the socket however serving ends; Ctrl-C is how a developer stops it.
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.cos_server", description="A local COS-compatible server for development and tests."
    )
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
