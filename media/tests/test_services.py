"""Storing uploads: what lands in storage is the re-encoded photo, and an upload URL counts as an
upload only for the user it was handed to."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from PIL import Image

from accounts.tests.factories import make_member, make_user
from core import errors
from media.models import Upload
from media.services import (
    media_require_upload,
    media_result_key,
    media_result_stage,
    media_upload,
    media_uploads_clean,
    upload_key_for_user,
)
from media.storage import get_storage
from media.tests.images import BLUE, RED, camera_exif, encode, pixel, product_photo, two_tone

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _users_seven_and_seventy() -> None:
    """The owners the upload keys below name (`uploads/7/…`, `uploads/70/…`)."""
    for user_id in (7, 8, 70):
        make_user(id=user_id, username=f"owner{user_id}")


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


def test_uploads_never_ordered_on_are_cleaned_up_after_the_retention(settings: Any) -> None:
    member = make_member()
    used_key, _used_url, _ = media_upload(user_id=member.pk, data=product_photo())
    unused_key, _url, _ = media_upload(user_id=member.pk, data=product_photo())
    fresh_key, _url, _ = media_upload(user_id=member.pk, data=product_photo())
    media_require_upload(key=used_key, user_id=member.pk)
    old = timezone.now() - timedelta(days=settings.UPLOAD_RETENTION_DAYS, minutes=1)
    Upload.objects.filter(key__in=[used_key, unused_key]).update(created_at=old)

    assert media_uploads_clean() == 1
    storage = get_storage()
    assert not storage.exists(key=unused_key) and not Upload.objects.filter(key=unused_key).exists()
    assert storage.exists(key=used_key) and storage.exists(key=fresh_key), "used or recent uploads stay"
    assert media_uploads_clean() == 0


def test_ordering_on_an_upload_checks_the_record_not_the_storage(django_assert_max_num_queries: Any) -> None:
    member, other = make_member(), make_member()
    key, _url, _ = media_upload(user_id=member.pk, data=product_photo())
    with django_assert_max_num_queries(1):
        media_require_upload(key=key, user_id=member.pk)
    assert Upload.objects.get(key=key).used_at is not None
    with pytest.raises(errors.InvalidParams):
        media_require_upload(key=key, user_id=other.pk)
