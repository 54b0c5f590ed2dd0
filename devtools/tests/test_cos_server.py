"""The local COS server, driven by the real cos-python-sdk-v5 and plain HTTP over loopback."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from PIL import Image, ImageDraw, ImageStat
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from devtools.cos_testing import RunningCos

REPO_ROOT = Path(__file__).resolve().parents[2]


def product_jpeg(size: tuple[int, int] = (160, 120)) -> bytes:
    picture = Image.new("RGB", size, (236, 236, 232))
    width, height = size
    ImageDraw.Draw(picture).ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(180, 30, 40))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=95)
    return out.getvalue()


def test_put_get_head_delete_round_trip(cos: RunningCos) -> None:
    client = cos.client()
    put = client.put_object(Bucket=cos.bucket, Body=b"hello", Key="dir/a b.txt", ContentType="text/plain")
    assert put["ETag"] == '"5d41402abc4b2a76b9719d911017c592"'

    got = client.get_object(Bucket=cos.bucket, Key="dir/a b.txt")
    assert got["Content-Type"] == "text/plain"
    assert got["Content-Length"] == "5"
    assert got["Body"].get_raw_stream().read() == b"hello"
    assert client.head_object(Bucket=cos.bucket, Key="dir/a b.txt")["Content-Length"] == "5"

    client.delete_object(Bucket=cos.bucket, Key="dir/a b.txt")
    assert client.object_exists(Bucket=cos.bucket, Key="dir/a b.txt") is False
    assert cos.keys() == []


def test_missing_object_is_a_cos_xml_error(cos: RunningCos) -> None:
    with pytest.raises(CosServiceError) as caught:
        cos.client().get_object(Bucket=cos.bucket, Key="nothing/here.png")
    error = caught.value
    assert (error.get_status_code(), error.get_error_code()) == (404, "NoSuchKey")
    assert error.get_resource_location() == "/nothing/here.png"
    assert error.get_request_id()


def test_bucket_comes_from_the_host_header(cos: RunningCos) -> None:
    cos.state.create_bucket("other-1250000000")
    cos.client().put_object(Bucket="other-1250000000", Body=b"x", Key="k")
    assert cos.state.keys("other-1250000000") == ["k"]
    assert cos.keys() == []
    with pytest.raises(CosServiceError) as caught:
        cos.client().put_object(Bucket="unknown-1250000000", Body=b"x", Key="k")
    assert caught.value.get_error_code() == "NoSuchBucket"


def test_wrong_secret_is_rejected(cos: RunningCos) -> None:
    with pytest.raises(CosServiceError) as caught:
        cos.client(secret_key="not-the-secret").put_object(Bucket=cos.bucket, Body=b"x", Key="k")
    assert (caught.value.get_status_code(), caught.value.get_error_code()) == (403, "SignatureDoesNotMatch")
    assert cos.keys() == []


def test_signature_covers_the_signed_headers(cos: RunningCos) -> None:
    client = cos.client()
    url = f"{cos.endpoint_url}/k"
    authorization = client.get_auth(Method="PUT", Bucket=cos.bucket, Key="k", Headers={"Content-Type": "text/plain"})
    sent = requests.put(url, data=b"x", headers={"Authorization": authorization, "Content-Type": "text/plain"})
    assert sent.status_code == 200
    changed = requests.put(url, data=b"x", headers={"Authorization": authorization, "Content-Type": "text/html"})
    assert changed.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in changed.text


def test_expired_signature_is_rejected(cos: RunningCos) -> None:
    client = cos.client()
    client.put_object(Bucket=cos.bucket, Body=b"x", Key="k")
    expired = client.get_auth(Method="GET", Bucket=cos.bucket, Key="k", Expired=-1)
    answer = requests.get(f"{cos.endpoint_url}/k", headers={"Authorization": expired})
    assert answer.status_code == 403
    assert "<Code>AccessDenied</Code>" in answer.text
    assert "Request has expired" in answer.text


def test_presigned_url_works_with_plain_http_and_tampering_fails(cos: RunningCos) -> None:
    client = cos.client()
    client.put_object(Bucket=cos.bucket, Body=b"secret bytes", Key="p/file.bin")
    client.put_object(Bucket=cos.bucket, Body=b"other bytes", Key="p/other.bin")
    url = client.get_presigned_download_url(Bucket=cos.bucket, Key="p/file.bin", Expired=300)

    assert requests.get(url).content == b"secret bytes"
    assert requests.get(url.replace("p/file.bin", "p/other.bin")).status_code == 403

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    forged_signature = {**query, "q-signature": "0" * 40}
    start, end = query["q-sign-time"].split(";")
    stretched = {
        **query,
        "q-sign-time": f"{start};{int(end) + 86400}",
        "q-key-time": f"{start};{int(end) + 86400}",
    }
    for forged in (forged_signature, stretched):
        assert requests.get(f"{cos.endpoint_url}{parts.path}?{urlencode(forged)}").status_code == 403

    expired = client.get_presigned_download_url(Bucket=cos.bucket, Key="p/file.bin", Expired=-1)
    assert "Request has expired" in requests.get(expired).text


def test_private_and_public_read_buckets(cos: RunningCos) -> None:
    cos.client().put_object(Bucket=cos.bucket, Body=b"pixels", Key="img/a.png", ContentType="image/png")
    plain_url = f"{cos.endpoint_url}/img/a.png"

    denied = requests.get(plain_url)
    assert denied.status_code == 403
    assert "<Code>AccessDenied</Code>" in denied.text

    cos.set_acl("public-read")
    public = requests.get(plain_url)
    assert (public.status_code, public.content, public.headers["Content-Type"]) == (
        200,
        b"pixels",
        "image/png",
    )
    assert requests.put(plain_url, data=b"overwrite").status_code == 403
    assert requests.delete(plain_url).status_code == 403
    assert cos.client().get_object(Bucket=cos.bucket, Key="img/a.png")["Body"].get_raw_stream().read() == b"pixels"


def test_moderation_verdicts_follow_the_rules(cos: RunningCos) -> None:
    client = cos.client()
    for key in ("r/clean.jpg", "r/nsfw.jpg", "r/unsure.jpg"):
        client.put_object(Bucket=cos.bucket, Body=product_jpeg(), Key=key, ContentType="image/jpeg")
    cos.set_moderation(1, key_substring="nsfw", label="Porn", score=97)
    cos.set_moderation(2, key_substring="unsure", label="Ads", score=71)

    clean = client.get_object_sensitive_content_recognition(Bucket=cos.bucket, Key="r/clean.jpg")
    blocked = client.get_object_sensitive_content_recognition(Bucket=cos.bucket, Key="r/nsfw.jpg")
    review = client.get_object_sensitive_content_recognition(Bucket=cos.bucket, Key="r/unsure.jpg", BizType="b1")

    assert (clean["Result"], clean["Label"], clean["PornInfo"]["HitFlag"]) == ("0", "Normal", "0")
    assert (blocked["Result"], blocked["Label"], blocked["Score"]) == ("1", "Porn", "97")
    assert blocked["PornInfo"]["HitFlag"] == "1"
    assert (review["Result"], review["AdsInfo"]["HitFlag"], review["PornInfo"]["HitFlag"]) == ("2", "1", "0")


def test_moderation_needs_a_signature_even_on_a_public_bucket(cos: RunningCos) -> None:
    cos.set_acl("public-read")
    cos.client().put_object(Bucket=cos.bucket, Body=product_jpeg(), Key="r/a.jpg")
    answer = requests.get(f"{cos.endpoint_url}/r/a.jpg?ci-process=sensitive-content-recognition")
    assert answer.status_code == 403


def test_control_api_over_http(cos: RunningCos) -> None:
    cos.client().put_object(Bucket=cos.bucket, Body=product_jpeg(), Key="r/a.jpg")
    assert requests.post(f"{cos.endpoint_url}/_cos/moderation", json={"result": 2}).status_code == 200
    answer = cos.client().get_object_sensitive_content_recognition(Bucket=cos.bucket, Key="r/a.jpg")
    assert answer["Result"] == "2"
    assert requests.post(f"{cos.endpoint_url}/_cos/moderation", json={"result": 7}).status_code == 400
    assert requests.post(f"{cos.endpoint_url}/_cos/nothing", json={}).status_code == 400


def test_faults(cos: RunningCos) -> None:
    client = cos.client()
    client.put_object(Bucket=cos.bucket, Body=product_jpeg(), Key="r/a.jpg")

    cos.set_fault("error", "moderation")
    with pytest.raises(CosServiceError) as caught:
        client.get_object_sensitive_content_recognition(Bucket=cos.bucket, Key="r/a.jpg")
    assert caught.value.get_status_code() == 503
    assert client.object_exists(Bucket=cos.bucket, Key="r/a.jpg")

    cos.set_fault("refuse")
    with pytest.raises(CosClientError):
        client.get_object(Bucket=cos.bucket, Key="r/a.jpg")

    cos.set_fault("none")
    assert client.object_exists(Bucket=cos.bucket, Key="r/a.jpg")


def test_goods_matting_on_upload_cuts_the_product_out(cos: RunningCos) -> None:
    operations = '{"is_pic_info":1,"rules":[{"fileid":"/out/cut.png","rule":"ci-process=GoodsMatting"}]}'
    _, result = cos.client().ci_put_object(
        Bucket=cos.bucket, Body=product_jpeg(), Key="in/src.jpg", PicOperations=operations
    )
    assert result["OriginalInfo"]["ImageInfo"]["Width"] == "160"
    assert result["ProcessResults"]["Object"]["Key"] == "out/cut.png"
    assert result["ProcessResults"]["Object"]["Format"] == "png"

    cut = Image.open(io.BytesIO(cos.state.get(cos.bucket, "out/cut.png").data))  # type: ignore[union-attr]
    assert cut.mode == "RGBA"
    alpha = cut.getchannel("A")
    assert [alpha.getpixel(corner) for corner in ((0, 0), (159, 0), (0, 119), (159, 119))] == [0, 0, 0, 0]
    assert alpha.getpixel((80, 60)) == 255
    assert cos.keys() == ["in/src.jpg", "out/cut.png"]


def test_imagemogr2_rule_and_relative_fileid(cos: RunningCos) -> None:
    operations = '{"rules":[{"fileid":"enh.jpg","rule":"imageMogr2/sharpen/70/bright/20/contrast/10/quality/80"}]}'
    _, result = cos.client().ci_put_object(
        Bucket=cos.bucket, Body=product_jpeg(), Key="in/src.jpg", PicOperations=operations
    )
    assert result["ProcessResults"]["Object"]["Key"] == "in/enh.jpg"
    assert "ImageInfo" not in result["OriginalInfo"]
    enhanced = Image.open(io.BytesIO(cos.state.get(cos.bucket, "in/enh.jpg").data))  # type: ignore[union-attr]
    original = Image.open(io.BytesIO(product_jpeg()))
    assert enhanced.format == "JPEG"
    assert enhanced.size == original.size
    assert ImageStat.Stat(enhanced.convert("L")).mean[0] > ImageStat.Stat(original.convert("L")).mean[0]


def test_bad_processing_rules_are_rejected(cos: RunningCos) -> None:
    for rule in (
        "imageMogr2/sharpen/5",
        "imageMogr2/rotate/90",
        "ci-process=AIPortraitMatting",
        "watermark/1",
    ):
        operations = json.dumps({"rules": [{"fileid": "/x.png", "rule": rule}]})
        with pytest.raises(CosServiceError) as caught:
            cos.client().ci_put_object(
                Bucket=cos.bucket, Body=product_jpeg(), Key="in/src.jpg", PicOperations=operations
            )
        assert caught.value.get_status_code() == 400
    assert cos.keys() == []


def test_command_line_entry_serves_the_sdk() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.cos_server",
            "--port",
            "0",
            "--secret-id",
            "AKIDcli",
            "--secret-key",
            "sk",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        port = int(banner.split("http://127.0.0.1:", 1)[1].split()[0])
        from qcloud_cos import CosConfig, CosS3Client

        config = CosConfig(
            Region="ap-guangzhou",
            SecretId="AKIDcli",
            SecretKey="sk",
            Scheme="http",
            IP="127.0.0.1",
            Port=port,
        )
        client = CosS3Client(config, retry=0)
        client.put_object(Bucket="photos-1250000000", Body=b"cli", Key="k")
        assert client.get_object(Bucket="photos-1250000000", Key="k")["Body"].get_raw_stream().read() == b"cli"
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_the_control_api_lists_a_buckets_keys(cos: RunningCos) -> None:
    cos.client().put_object(Bucket=cos.bucket, Body=product_jpeg(), Key="results/1/b.png")
    cos.client().put_object(Bucket=cos.bucket, Body=product_jpeg(), Key="results/1/a.png")
    answer = requests.post(f"{cos.endpoint_url}/_cos/keys", json={}).json()
    assert answer == {"keys": ["results/1/a.png", "results/1/b.png"]}
