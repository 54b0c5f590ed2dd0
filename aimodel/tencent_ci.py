"""`basic_clean` and content audit on Tencent Cloud Infinite (CI), through cos-python-sdk-v5.

basic_clean uses CI's processing on upload: a PUT with a `Pic-Operations` header stores the upload and,
for each rule (at most five), a processed copy at the rule's `fileid` (a leading "/" makes it a path
from the bucket root). Steps, all under `work_prefix`:

1. PUT `source.<ext>` with rule `ci-process=GoodsMatting` (product matting) -> `cutout.png`, the
   product on transparency.
2. The white version is that cut-out flattened onto #FFFFFF here: CI documents no operation that
   fills transparency with a colour, and compositing two images is not worth a round trip.
3. PUT `white.jpg` with rule `imageMogr2/sharpen/<n>/bright/<n>/contrast/<n>` -> `enhanced.jpg`.

Every object it made is deleted before it returns, also when a step fails.

Audit asks CI image moderation (`GET /<key>?ci-process=sensitive-content-recognition`) about an object
already in the bucket: Result 0 is normal, 1 block, 2 suspicious (human review).
"""

from __future__ import annotations

import io
import json
import logging
from xml.etree.ElementTree import ParseError

from django.conf import settings
from PIL import Image, UnidentifiedImageError
from qcloud_cos import CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from aimodel.types import AuditResult, AuditUnavailable, AuditVerdict, ImageOutput
from core.cos import cos_client_from_settings, cos_settings

logger = logging.getLogger(__name__)

MATTING_RULE = "ci-process=GoodsMatting"
# Sharpen takes 10-300 (CI suggests 70); bright and contrast take -100..100. Mild values: the product
# photo is already lit, the goal is a crisper listing image, not a different one.
ENHANCE_RULE = "imageMogr2/sharpen/70/bright/5/contrast/10"
JPEG_QUALITY = 92

_VERDICTS = {0: AuditVerdict.PASS, 1: AuditVerdict.BLOCK, 2: AuditVerdict.REVIEW}
_SOURCE_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class TencentCiError(Exception):
    """CI did not produce the images; `transient` when retrying later may help (network, 5xx)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def _client_and_bucket(client: CosS3Client | None, bucket: str | None) -> tuple[CosS3Client, str]:
    return (client or cos_client_from_settings(), bucket or cos_settings().bucket)


def basic_clean_tencent_ci(
    *,
    image: bytes,
    work_prefix: str,
    client: CosS3Client | None = None,
    bucket: str | None = None,
) -> list[ImageOutput]:
    """The "cutout", "white" and "enhanced" images of `image`, made by CI in `bucket` under `work_prefix`."""
    client, bucket = _client_and_bucket(client, bucket)
    prefix = work_prefix.strip("/")
    source_key = f"{prefix}/source.{_source_extension(image)}"
    cutout_key, white_key, enhanced_key = (
        f"{prefix}/cutout.png",
        f"{prefix}/white.jpg",
        f"{prefix}/enhanced.jpg",
    )
    try:
        source_type = "image/" + source_key.rsplit(".", 1)[1].replace("jpg", "jpeg")
        _upload_processed(client, bucket, source_key, image, source_type, cutout_key, MATTING_RULE)
        cutout = _download(client, bucket, cutout_key)
        white = _flatten_on_white(cutout)
        _upload_processed(client, bucket, white_key, white, "image/jpeg", enhanced_key, ENHANCE_RULE)
        enhanced = _download(client, bucket, enhanced_key)
    finally:
        for key in (source_key, cutout_key, white_key, enhanced_key):
            _delete_quietly(client, bucket, key)
    return [
        ImageOutput(name="cutout", data=cutout, content_type="image/png", ext="png"),
        ImageOutput(name="white", data=white, content_type="image/jpeg", ext="jpg"),
        ImageOutput(name="enhanced", data=enhanced, content_type="image/jpeg", ext="jpg"),
    ]


def _source_extension(image: bytes) -> str:
    try:
        with Image.open(io.BytesIO(image)) as picture:
            picture_format = picture.format or ""
    except (UnidentifiedImageError, OSError) as exc:
        raise TencentCiError(f"the input is not a readable image: {exc}", transient=False) from exc
    if picture_format not in _SOURCE_EXTENSIONS:
        raise TencentCiError(f"CI basic_clean takes JPEG, PNG or WebP, not {picture_format}", transient=False)
    return _SOURCE_EXTENSIONS[picture_format]


def _upload_processed(
    client: CosS3Client, bucket: str, key: str, data: bytes, content_type: str, result_key: str, rule: str
) -> None:
    operations = json.dumps({"is_pic_info": 0, "rules": [{"fileid": "/" + result_key, "rule": rule}]})
    try:
        _, answer = client.ci_put_object(
            Bucket=bucket, Body=data, Key=key, ContentType=content_type, PicOperations=operations
        )
    except (CosClientError, CosServiceError) as exc:
        raise _ci_error(f"CI processing {rule!r} failed", exc) from exc
    except ParseError as exc:
        raise TencentCiError(f"CI answered {rule!r} with something that is not XML", transient=True) from exc
    produced = (answer or {}).get("ProcessResults", {}).get("Object")
    if not isinstance(produced, dict) or produced.get("Key") != result_key:
        raise TencentCiError(f"CI did not report {result_key!r} for {rule!r}: {answer!r}", transient=True)


def _download(client: CosS3Client, bucket: str, key: str) -> bytes:
    try:
        response = client.get_object(Bucket=bucket, Key=key)
        return b"".join(response["Body"].get_stream(chunk_size=64 * 1024))
    except (CosClientError, CosServiceError) as exc:
        raise _ci_error(f"reading the CI result {key!r} failed", exc) from exc


def _flatten_on_white(cutout_png: bytes) -> bytes:
    try:
        with Image.open(io.BytesIO(cutout_png)) as picture:
            subject = picture.convert("RGBA")
    except (UnidentifiedImageError, OSError) as exc:
        raise TencentCiError(f"CI returned a cut-out that is not an image: {exc}", transient=True) from exc
    canvas = Image.new("RGBA", subject.size, (255, 255, 255, 255))
    canvas.alpha_composite(subject)
    out = io.BytesIO()
    canvas.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _delete_quietly(client: CosS3Client, bucket: str, key: str) -> None:
    # A leftover work file costs storage, not correctness; it must not hide the real outcome.
    try:
        client.delete_object(Bucket=bucket, Key=key)
    except (CosClientError, CosServiceError):
        logger.warning("could not delete CI work object %s from %s", key, bucket, exc_info=True)


def _ci_error(message: str, exc: CosClientError | CosServiceError) -> TencentCiError:
    if isinstance(exc, CosServiceError):
        status = exc.get_status_code()
        return TencentCiError(f"{message}: HTTP {status} {exc.get_error_code()}", transient=status >= 500)
    return TencentCiError(f"{message}: {exc}", transient=True)


def audit_image_tencent_ci(
    *,
    key: str,
    client: CosS3Client | None = None,
    bucket: str | None = None,
    biz_type: str | None = None,
) -> AuditResult:
    """CI's moderation verdict on the object `key`; AuditUnavailable whenever there is no clear answer."""
    client, bucket = _client_and_bucket(client, bucket)
    if biz_type is None:
        biz_type = str(getattr(settings, "COS_AUDIT_BIZTYPE", "") or "")
    try:
        answer = client.get_object_sensitive_content_recognition(Bucket=bucket, Key=key, BizType=biz_type)
    except CosServiceError as exc:
        # A 4xx (bad credentials, missing object) is no verdict either; the caller never treats it as a pass.
        raise AuditUnavailable(
            f"moderation of {key!r} failed: HTTP {exc.get_status_code()} {exc.get_error_code()}"
        ) from exc
    except CosClientError as exc:
        raise AuditUnavailable(f"moderation of {key!r} could not reach CI: {exc}") from exc
    except (ParseError, SyntaxError, ValueError) as exc:
        raise AuditUnavailable(f"moderation of {key!r} answered something that is not XML") from exc
    state = str(answer.get("State") or "Success")
    code = str(answer.get("Code") or "Success")
    if state != "Success" or code != "Success":
        # A job that did not finish carries a default Result of 0: that is no verdict, let alone a pass.
        raise AuditUnavailable(f"moderation of {key!r} did not complete: State={state} Code={code}")
    try:
        verdict = _VERDICTS[int(answer["Result"])]
        score = int(answer.get("Score") or 0)
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditUnavailable(f"moderation of {key!r} gave no usable Result: {answer!r}") from exc
    return AuditResult(verdict=verdict, label=str(answer.get("Label") or ""), score=score)
