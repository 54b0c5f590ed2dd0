"""Start the COS-compatible server in a background thread on a free loopback port, for tests."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from qcloud_cos import CosConfig, CosS3Client

from devtools.cos_server import Acl, CosHTTPServer, CosState, FaultMode, FaultScope, make_server


@dataclass
class RunningCos:
    """A started server: where it listens, the credentials it accepts, and the knobs tests turn."""

    server: CosHTTPServer
    secret_id: str
    secret_key: str
    bucket: str
    region: str
    _thread: threading.Thread = field(repr=False)

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> CosState:
        return self.server.state

    def client(self, *, secret_key: str | None = None) -> CosS3Client:
        """A real SDK client aimed at this server (optionally with another secret, to provoke rejections)."""
        config = CosConfig(
            Region=self.region,
            SecretId=self.secret_id,
            SecretKey=secret_key or self.secret_key,
            Scheme="http",
            IP=self.host,
            Port=self.port,
        )
        return CosS3Client(config, retry=0)

    def set_acl(self, acl: Acl, *, bucket: str | None = None) -> None:
        self.state.create_bucket(bucket or self.bucket, acl)

    def set_moderation(
        self, result: int, *, key_substring: str = "", label: str = "", score: int = 0, state: str = "Success"
    ) -> None:
        self.state.set_moderation(result, key_substring=key_substring, label=label, score=score, state=state)

    def set_fault(self, mode: FaultMode, scope: FaultScope = "all") -> None:
        self.state.set_fault(mode, scope)

    def keys(self) -> list[str]:
        return self.state.keys(self.bucket)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def start_cos_server(*, bucket: str = "photos-1250000000", region: str = "ap-guangzhou") -> RunningCos:
    secret_id = "AKID" + secrets.token_hex(8)
    secret_key = secrets.token_hex(16)
    server = make_server(port=0, secret_id=secret_id, secret_key=secret_key, region=region, bucket=bucket)
    thread = threading.Thread(target=server.serve_forever, name="cos-server", daemon=True)
    thread.start()
    return RunningCos(
        server=server,
        secret_id=secret_id,
        secret_key=secret_key,
        bucket=bucket,
        region=region,
        _thread=thread,
    )
