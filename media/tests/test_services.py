"""Storing uploads: what lands in storage is the re-encoded photo, and an upload URL counts as an
upload only for the user it was handed to."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from media.services import media_result_key, media_result_stage, media_upload, upload_key_for_user
from media.storage import get_storage
from media.tests.images import BLUE, RED, camera_exif, encode, pixel, product_photo, two_tone


def test_the_stored_upload_has_no_exif_and_is_upright() -> None:
    data = encode(two_tone((40, 20)), "JPEG", exif=camera_exif(orientation=6))
    key, url, info = media_upload(user_id=7, data=data)
    stored = get_storage().read(key=key)
    assert stored != data and len(stored) == info.size
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG" and not image.getexif() and "exif" not in image.info
    assert b"TestCam" not in stored
    assert image.size == (info.width, info.height) == (20, 40)
    red, blue = pixel(image, (10, 5)), pixel(image, (10, 35))
    assert red[0] > 200 > red[2] and blue[2] > 200 > blue[0], (red, blue, RED, BLUE)
    assert key.startswith("uploads/7/") and key.endswith(".jpg") and url.endswith(key)


def test_an_mpo_upload_is_stored_as_a_jpeg() -> None:
    mpo = encode(Image.new("RGB", (32, 32), RED), "MPO", save_all=True, append_images=[Image.new("RGB", (32, 32))])
    key, _url, info = media_upload(user_id=7, data=mpo)
    assert key.endswith(".jpg") and info.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(get_storage().read(key=key))).format == "JPEG"


def test_an_upload_url_is_an_upload_only_for_its_owner() -> None:
    key, url, _info = media_upload(user_id=7, data=product_photo())
    assert upload_key_for_user(url, user_id=7) == key
    assert upload_key_for_user(url, user_id=8) is None
    # Not a prefix match: user 7's upload is nothing of user 70's, nor the reverse.
    assert upload_key_for_user(url, user_id=70) is None
    _key70, url70, _ = media_upload(user_id=70, data=product_photo())
    assert upload_key_for_user(url70, user_id=7) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://testserver/media/uploads/7/../8/0123456789abcdef0123456789abcdef.png",
        "http://testserver/media/uploads/7/notahexname.png",
        "http://testserver/media/uploads/7/0123456789abcdef0123456789abcdef.gif",
        "http://testserver/media/results/7/0123456789abcdef0123456789abcdef.png",
        "http://testserver/media/uploads/07/0123456789abcdef0123456789abcdef.png",
        "https://elsewhere.example.com/media/uploads/7/0123456789abcdef0123456789abcdef.png",
    ],
)
def test_anything_but_the_exact_upload_key_shape_is_no_upload(url: str) -> None:
    assert upload_key_for_user(url, user_id=7) is None


def test_result_keys_sit_under_an_unguessable_stage_folder() -> None:
    """Results are stored before the audit decides: until the task hands the URLs out, nobody can
    guess where they are (a blocked result is deleted there, never having been reachable)."""
    task_id = uuid.uuid4()
    first, second = media_result_stage(), media_result_stage()
    assert first != second and len(first) == 32 and int(first, 16) >= 0
    key = media_result_key(user_id=7, task_id=task_id, stage=first, index=1, ext="png")
    assert key == f"results/7/{task_id}/{first}/1.png"
