from typing import Any

import pytest

from accounts.tests.factories import logged_in, make_member, make_superuser, make_support
from quota.models import LedgerKind, QuotaLedger
from quota.services import quota_adjust

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("maker", [make_support, make_superuser], ids=["support", "superuser"])
def test_ledger_is_read_only_for_everyone(maker: Any) -> None:
    member = make_member()
    row = QuotaLedger.objects.get(user=member)
    client = logged_in(maker())
    assert client.get("/admin/quota/quotaledger/").status_code == 200
    page = client.get(f"/admin/quota/quotaledger/{row.pk}/change/")
    assert page.status_code == 200 and 'name="delta"' not in page.content.decode()
    assert client.post(f"/admin/quota/quotaledger/{row.pk}/change/", {"delta": 999}).status_code == 403
    assert client.get("/admin/quota/quotaledger/add/").status_code == 403
    assert client.post(f"/admin/quota/quotaledger/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    changelist = client.get("/admin/quota/quotaledger/")
    assert "delete_selected" not in changelist.content.decode()
    row.refresh_from_db()
    assert row.delta == 10


def test_ledger_filters_by_kind_and_user() -> None:
    first, second = make_member(), make_member()
    quota_adjust(user_id=first.pk, delta=-2, reason="更正")
    client = logged_in(make_support())

    def rows(query: str) -> list[tuple[int, str]]:
        response = client.get(f"/admin/quota/quotaledger/?{query}")
        assert response.status_code == 200
        return [(row.user_id, row.kind) for row in response.context["cl"].result_list]

    assert rows(f"user={first.pk}") == [(first.pk, LedgerKind.ADJUST), (first.pk, LedgerKind.GRANT)]
    assert rows("kind__exact=grant") == [(second.pk, LedgerKind.GRANT), (first.pk, LedgerKind.GRANT)]
    assert rows(f"kind__exact=adjust&user={second.pk}") == []
    assert first.username in client.get(f"/admin/quota/quotaledger/?user={first.pk}").content.decode()


def test_ledger_list_query_count_is_bounded(assert_max_statements: Any) -> None:
    for _ in range(200):
        make_member()
    client = logged_in(make_support())
    with assert_max_statements(8):
        response = client.get("/admin/quota/quotaledger/?kind__exact=grant")
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 100
