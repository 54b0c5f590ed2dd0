"""The Tencent CI engines through the real SDK against the local COS server; no database needed."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw, ImageStat

from aimodel.tencent_ci import TencentCiError, audit_image_tencent_ci, basic_clean_tencent_ci
from aimodel.types import AuditUnavailable, AuditVerdict
from devtools.cos_testing import RunningCos, start_cos_server


def product_photo(fmt: str = "JPEG") -> bytes:
    """A red box on a light grey studio backdrop, as a seller would shoot it."""
    picture = Image.new("RGB", (240, 180), (232, 233, 230))
    ImageDraw.Draw(picture).rounded_rectangle((70, 40, 170, 140), radius=12, fill=(190, 35, 45))
    out = io.BytesIO()
    picture.save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


CORNERS = ((0, 0), (239, 0), (0, 179), (239, 179))
CENTRE = (120, 90)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_basic_clean_gives_cutout_white_and_enhanced(cos: RunningCos, fmt: str) -> None:
    outputs = basic_clean_tencent_ci(
        image=product_photo(fmt), work_prefix="work/task-1/", client=cos.client(), bucket=cos.bucket
    )

    assert [(o.name, o.content_type, o.ext) for o in outputs] == [
        ("cutout", "image/png", "png"),
        ("white", "image/jpeg", "jpg"),
        ("enhanced", "image/jpeg", "jpg"),
    ]
    cutout, white, enhanced = (Image.open(io.BytesIO(o.data)) for o in outputs)

    assert (cutout.format, cutout.mode, cutout.size) == ("PNG", "RGBA", (240, 180))
    alpha = cutout.getchannel("A")
    assert [alpha.getpixel(corner) for corner in CORNERS] == [0, 0, 0, 0]
    assert alpha.getpixel(CENTRE) == 255

    assert (white.format, white.size) == ("JPEG", (240, 180))
    for corner in CORNERS:
        assert min(white.getpixel(corner)) >= 250  # type: ignore[arg-type]
    red, green, _ = white.getpixel(CENTRE)  # type: ignore[misc]
    assert red > 150 > green

    assert (enhanced.format, enhanced.size) == ("JPEG", (240, 180))
    assert min(enhanced.getpixel((0, 0))) >= 250  # type: ignore[arg-type]
    subject = (80, 50, 160, 130)
    assert ImageStat.Stat(enhanced.crop(subject)).mean != ImageStat.Stat(white.crop(subject)).mean

    assert cos.keys() == []


def test_basic_clean_rejects_what_is_not_an_image(cos: RunningCos) -> None:
    with pytest.raises(TencentCiError) as caught:
        basic_clean_tencent_ci(image=b"not an image", work_prefix="work/t2", client=cos.client(), bucket=cos.bucket)
    assert caught.value.transient is False
    assert cos.keys() == []


def test_basic_clean_reports_a_ci_outage_as_transient_and_cleans_up(cos: RunningCos) -> None:
    cos.set_fault("error")
    with pytest.raises(TencentCiError) as caught:
        basic_clean_tencent_ci(image=product_photo(), work_prefix="work/t3", client=cos.client(), bucket=cos.bucket)
    assert caught.value.transient is True
    cos.set_fault("none")
    assert cos.keys() == []


def test_basic_clean_rejected_by_ci_is_permanent(cos: RunningCos) -> None:
    with pytest.raises(TencentCiError) as caught:
        basic_clean_tencent_ci(
            image=product_photo(),
            work_prefix="work/t4",
            client=cos.client(secret_key="wrong"),
            bucket=cos.bucket,
        )
    assert caught.value.transient is False
    assert "403" in str(caught.value)


@pytest.mark.parametrize(
    ("result", "verdict", "label", "score"),
    [
        (0, AuditVerdict.PASS, "Normal", 0),
        (1, AuditVerdict.BLOCK, "Porn", 95),
        (2, AuditVerdict.REVIEW, "Ads", 72),
    ],
)
def test_audit_maps_the_moderation_result(
    cos: RunningCos, result: int, verdict: AuditVerdict, label: str, score: int
) -> None:
    cos.client().put_object(Bucket=cos.bucket, Body=product_photo(), Key="results/t/white.jpg")
    cos.set_moderation(result, key_substring="results/t/", label=label, score=score)

    audit = audit_image_tencent_ci(key="results/t/white.jpg", client=cos.client(), bucket=cos.bucket, biz_type="")

    assert (audit.verdict, audit.label, audit.score) == (verdict, label, score)


@pytest.mark.parametrize("fault", ["error", "refuse", "garbage"])
def test_audit_unavailable_when_ci_misbehaves(cos: RunningCos, fault: str) -> None:
    cos.client().put_object(Bucket=cos.bucket, Body=product_photo(), Key="results/t/white.jpg")
    cos.set_fault(fault, "moderation")  # type: ignore[arg-type]
    with pytest.raises(AuditUnavailable):
        audit_image_tencent_ci(key="results/t/white.jpg", client=cos.client(), bucket=cos.bucket, biz_type="")


def test_a_moderation_job_that_failed_is_no_pass(cos: RunningCos) -> None:
    cos.client().put_object(Bucket=cos.bucket, Body=product_photo(), Key="results/t/white.jpg")
    cos.set_moderation(0, state="Failed")
    with pytest.raises(AuditUnavailable, match="State=Failed"):
        audit_image_tencent_ci(key="results/t/white.jpg", client=cos.client(), bucket=cos.bucket, biz_type="")


def test_audit_unavailable_when_the_object_is_missing(cos: RunningCos) -> None:
    with pytest.raises(AuditUnavailable, match="NoSuchKey"):
        audit_image_tencent_ci(key="results/none.jpg", client=cos.client(), bucket=cos.bucket, biz_type="")


def test_audit_unavailable_when_nothing_listens() -> None:
    stopped = start_cos_server()
    client = stopped.client()
    stopped.stop()
    with pytest.raises(AuditUnavailable, match="could not reach"):
        audit_image_tencent_ci(key="results/a.jpg", client=client, bucket=stopped.bucket, biz_type="")


# --- CI answers the local server does not give: a stand-in for the SDK client (the network edge) ---


class StubCos:
    """Answers the four SDK calls basic_clean and the audit make, as each test scripts them."""

    def __init__(self, *, put: object = None, get: object = None, moderation: object = None) -> None:
        self.put, self.get, self.moderation = put, get, moderation
        self.deleted: list[str] = []
        self.puts: list[str] = []

    @staticmethod
    def _answer(scripted: object, default: object) -> object:
        if isinstance(scripted, BaseException):
            raise scripted
        return default if scripted is None else scripted

    def ci_put_object(self, *, Bucket: str, Body: bytes, Key: str, ContentType: str, PicOperations: str) -> object:
        self.puts.append(Key)
        import json

        result_key = json.loads(PicOperations)["rules"][0]["fileid"].lstrip("/")
        return {}, self._answer(self.put, {"ProcessResults": {"Object": {"Key": result_key}}})

    def get_object(self, *, Bucket: str, Key: str) -> object:
        body = self._answer(self.get, product_photo("PNG"))

        class Stream:
            def get_stream(self, chunk_size: int) -> list[bytes]:
                return [body]  # type: ignore[list-item]

        return {"Body": Stream()}

    def delete_object(self, *, Bucket: str, Key: str) -> None:
        self.deleted.append(Key)

    def get_object_sensitive_content_recognition(self, *, Bucket: str, Key: str, BizType: str) -> object:
        return self._answer(self.moderation, {})


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, format="GIF")
    return out.getvalue()


def clean(stub: StubCos, image: bytes | None = None) -> TencentCiError:
    with pytest.raises(TencentCiError) as caught:
        basic_clean_tencent_ci(image=image or product_photo(), work_prefix="work/s", client=stub, bucket="b")
    return caught.value


def test_basic_clean_refuses_a_format_ci_does_not_take_before_sending_it() -> None:
    stub = StubCos()
    error = clean(stub, gif())
    assert error.transient is False and "not GIF" in str(error)
    assert stub.puts == []


def test_an_answer_that_is_not_xml_is_transient_and_the_work_files_go(cos: RunningCos) -> None:
    cos.set_fault("garbage")
    with pytest.raises(TencentCiError) as caught:
        basic_clean_tencent_ci(image=product_photo(), work_prefix="work/g", client=cos.client(), bucket=cos.bucket)
    assert caught.value.transient is True and "not XML" in str(caught.value)
    cos.set_fault("none")
    assert cos.keys() == []


@pytest.mark.parametrize("answer", [{}, {"ProcessResults": {}}, {"ProcessResults": {"Object": {"Key": "other"}}}])
def test_an_answer_without_the_processed_object_is_transient(answer: object) -> None:
    stub = StubCos(put=answer)
    error = clean(stub)
    assert error.transient is True and "did not report" in str(error)
    assert sorted(stub.deleted) == sorted(
        ["work/s/source.jpg", "work/s/cutout.png", "work/s/white.jpg", "work/s/enhanced.jpg"]
    )


@pytest.mark.parametrize(("status", "transient"), [(503, True), (404, False)])
def test_a_failed_result_download_is_transient_only_for_server_faults(status: int, transient: bool) -> None:
    from qcloud_cos.cos_exception import CosServiceError

    stub = StubCos(get=CosServiceError("GET", {"code": "Oops", "message": "m"}, status))
    error = clean(stub)
    assert error.transient is transient and f"HTTP {status}" in str(error)


def test_a_corrupt_cut_out_is_transient() -> None:
    error = clean(StubCos(get=b"\x89PNG\r\n\x1a\n truncated"))
    assert error.transient is True and "cut-out that is not an image" in str(error)


@pytest.mark.parametrize(
    "answer",
    [
        {"State": "Success", "Code": "Success"},
        {"State": "Success", "Code": "Success", "Result": "maybe"},
        {"State": "Success", "Code": "Success", "Result": "7"},
        {"State": "Success", "Code": "Success", "Result": "0", "Score": "high"},
        {"State": "Success", "Code": "ImageTooLarge", "Result": "0"},
    ],
    ids=["no-result", "word-result", "unknown-result", "word-score", "error-code"],
)
def test_a_moderation_answer_without_a_usable_result_is_no_verdict(answer: object) -> None:
    with pytest.raises(AuditUnavailable):
        audit_image_tencent_ci(key="results/x.jpg", client=StubCos(moderation=answer), bucket="b", biz_type="")
