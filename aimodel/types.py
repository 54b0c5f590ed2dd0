"""Plain data passed between the AI engines and the apps that orchestrate them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class ImageOutput:
    """One produced image: `name` is stable per engine ("cutout", "white", "enhanced", "shot01"...)."""

    name: str
    data: bytes
    content_type: str
    ext: str


class AuditVerdict(StrEnum):
    PASS = "pass"
    BLOCK = "block"
    REVIEW = "review"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class AuditResult:
    verdict: AuditVerdict
    label: str = ""
    score: int = 0


class AuditUnavailable(Exception):
    """The audit service could not give an answer; the caller retries and never treats it as a pass."""


@dataclass(frozen=True)
class Pose12Params:
    """What a model_pose12 job is asked for; the values are checked where the request is parsed."""

    scene: str = "street"
    category: str = "dress"

    def as_dict(self) -> dict[str, str]:
        return {"scene": self.scene, "category": self.category}
