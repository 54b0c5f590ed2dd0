"""core/sql.py writes and reads rows exactly as the ORM does, in one statement each."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection, models
from django.db.models.functions import Now
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.tests.factories import make_member
from core.sql import row_get, row_insert
from quota.models import LedgerKind, QuotaLedger
from tasks.models import Task, TaskType

pytestmark = pytest.mark.django_db


def _row(model: type[models.Model], pk: Any) -> dict[str, Any]:
    return model._default_manager.filter(pk=pk).values().get()


def test_a_task_inserted_is_the_row_the_orm_saves() -> None:
    member = make_member(quota=5)
    fields = {
        "user": member,
        "type": TaskType.MODEL_POSE12,
        "input_image_url": "https://example.com/a.jpg",
        "params": {"scene": "街拍", "category": "上衣"},
        "cost": 3,
        "batch_id": uuid.uuid4(),
        "batch_index": 2,
    }
    by_orm = Task(id=uuid.uuid4(), **fields)
    by_orm.save(force_insert=True)
    ours = Task(id=uuid.uuid4(), **fields)
    with CaptureQueriesContext(connection) as queries:
        row_insert(ours)
    assert len(queries) == 1
    assert not ours._state.adding
    expected, written = _row(Task, by_orm.id), _row(Task, ours.id)
    for stamp in ("created_at", "updated_at"):
        assert abs(written.pop(stamp) - expected.pop(stamp)).total_seconds() < 5
    assert {**written, "id": None} == {**expected, "id": None}
    assert written["params"] == {"scene": "街拍", "category": "上衣"} and written["result_urls"] == []


def test_an_auto_primary_key_comes_back_from_the_insert() -> None:
    member = make_member(quota=5)
    first = QuotaLedger(user=member, delta=-1, balance_after=4, kind=LedgerKind.DEDUCT, task_id=uuid.uuid4())
    second = QuotaLedger(user=member, delta=-1, balance_after=3, kind=LedgerKind.DEDUCT)
    row_insert(first)
    row_insert(second)
    assert isinstance(first.pk, int) and second.pk == first.pk + 1
    assert _row(QuotaLedger, first.pk)["task_id"] == first.task_id
    assert _row(QuotaLedger, second.pk)["task_id"] is None


def test_a_row_read_is_the_instance_the_orm_reads() -> None:
    member = make_member(quota=7)
    with CaptureQueriesContext(connection) as queries:
        ours = row_get(User, member.pk)
    assert len(queries) == 1
    assert ours is not None and not ours._state.adding
    orm = User.objects.get(pk=member.pk)
    assert model_to_dict(ours) == model_to_dict(orm)
    assert ours.password == orm.password and ours.date_joined == orm.date_joined
    assert ours.quota_expire_at == orm.quota_expire_at and ours.quota_expire_at is not None
    assert row_get(User, member.pk + 1000) is None


def test_a_json_column_is_read_back_decoded() -> None:
    task = Task(id=uuid.uuid4(), user=make_member(quota=1), type=TaskType.BASIC_CLEAN, cost=1, params={"a": [1, 2]})
    row_insert(task)
    read = row_get(Task, task.id)
    assert read is not None and read.params == {"a": [1, 2]} and read.result_urls == []


class _Saving(models.Model):
    class Meta:
        app_label = "core"
        managed = False

    def __str__(self) -> str:
        return "saving"

    def save(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("not to be called")


class _DatabaseDefault(models.Model):
    at = models.DateTimeField(db_default=Now())

    class Meta:
        app_label = "core"
        managed = False

    def __str__(self) -> str:
        return "database default"


@pytest.mark.parametrize("model", [_Saving, _DatabaseDefault])
def test_models_the_plain_statement_would_not_write_as_the_orm_are_refused(model: type[models.Model]) -> None:
    with pytest.raises(TypeError, match="ORM"):
        row_insert(model())
