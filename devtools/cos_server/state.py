"""Everything the COS server knows, and the knobs tests turn: buckets, objects, ACLs, verdicts, faults.

- Buckets: the default one exists from the start; `create_bucket` adds more. ACL `private` (signed
  requests only) or `public-read` (anonymous GET/HEAD of objects too, never CI processing).
- Moderation verdicts (`set_moderation`): `Result` 0 normal, 1 block, 2 review, with a label and
  score, for keys containing a substring (the latest matching rule wins) or for every key. State
  `Failed` answers like a moderation job that did not complete: `Result` 0 with an error `Code`.
- Fault modes (`set_fault`), over `all` requests or only `moderation` ones:
  `error` answers 503 ServiceUnavailable, `refuse` drops the connection without an answer,
  `garbage` answers 200 with an HTML body that is not XML; `none` turns faults off.
- `reset()` empties every bucket, makes it private, and clears verdicts and faults.

The same knobs are reachable over HTTP at `/_cos/moderation`, `/_cos/fault`, `/_cos/acl`, `/_cos/reset`;
`/_cos/keys` lists a bucket's keys.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Literal

from devtools.cos_server.wire import CosError

Acl = Literal["private", "public-read"]
FaultMode = Literal["none", "error", "refuse", "garbage"]
FaultScope = Literal["all", "moderation"]


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
