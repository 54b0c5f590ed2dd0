from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import User
from core import errors
from quota.models import QuotaLedger


@dataclass(frozen=True)
class QuotaInfo:
    remaining: int
    is_member: bool
    expire_at: datetime | None


def quota_get(*, user_id: int) -> QuotaInfo:
    user = User.objects.filter(pk=user_id).only("is_member", "quota_remaining", "quota_expire_at").first()
    if user is None:
        raise errors.QuotaUserNotFound()
    return quota_info(user=user)


def quota_info(*, user: User) -> QuotaInfo:
    return QuotaInfo(remaining=user.quota_remaining, is_member=user.is_active_member, expire_at=user.quota_expire_at)


def quota_mismatches() -> list[tuple[str, int, int]]:
    """Users whose balance differs from the sum of their ledger: (username, balance, ledger sum)."""
    ledger_sum = (
        QuotaLedger.objects.filter(user=OuterRef("pk")).values("user").annotate(total=Sum("delta")).values("total")
    )
    rows = (
        User.objects.annotate(ledger_total=Coalesce(Subquery(ledger_sum, output_field=IntegerField()), Value(0)))
        .filter(~Q(quota_remaining=F("ledger_total")))
        .order_by("username")
        .values_list("username", "quota_remaining", "ledger_total")
    )
    return list(rows)
