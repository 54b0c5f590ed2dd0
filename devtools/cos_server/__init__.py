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

- `state.py`: buckets, objects, ACLs, moderation verdicts and the fault modes (listed there).
- `signature.py`: the HMAC-SHA1 signature check (its rules are listed there).
- `ci.py`: CI emulation: `Pic-Operations` processing on upload and image moderation.
- `wire.py`: the parsed request, `CosError`, the XML answers.
- `server.py`: the HTTP handler, `make_server`, the command line (`__main__.py` runs it).
"""

from devtools.cos_server.server import CosHTTPServer, main, make_server, run
from devtools.cos_server.signature import cos_signature
from devtools.cos_server.state import Acl, CosState, FaultMode, FaultScope

__all__ = ["Acl", "CosHTTPServer", "CosState", "FaultMode", "FaultScope", "cos_signature", "main", "make_server", "run"]
