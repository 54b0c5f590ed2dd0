"""The support dashboard on the admin index: a handful of aggregate queries, whatever the volume."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext

from quota.models import LedgerKind, QuotaLedger
from tasks.models import ACTIVE_STATUSES, FailureCode, Task, TaskStatus, stuck_condition

register = template.Library()

TOP_FAILURE_REASONS = 8


@register.inclusion_tag("admin/tasks/dashboard.html", takes_context=True)
def task_dashboard(context: dict[str, Any]) -> dict[str, Any]:
    user = context["request"].user
    if not user.has_perm("tasks.view_task"):
        return {"visible": False}
    now = timezone.now()
    since = now - timedelta(hours=24)
    recent = Task.objects.filter(created_at__gte=since)
    by_status = dict(recent.values_list("status").annotate(n=Count("pk")).order_by())
    labels = dict(FailureCode.choices)
    failures = [
        {**row, "label": labels.get(row["failure_code"], gettext("(无)"))}
        for row in recent.filter(status=TaskStatus.FAILED)
        .values("failure_code")
        .annotate(n=Count("pk"))
        .order_by("-n", "failure_code")[:TOP_FAILURE_REASONS]
    ]
    stuck = Task.objects.filter(status__in=ACTIVE_STATUSES).aggregate(
        pending=Count("pk", filter=stuck_condition(now) & Q(status=TaskStatus.PENDING)),
        processing=Count("pk", filter=stuck_condition(now) & Q(status=TaskStatus.PROCESSING)),
    )
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    quota = QuotaLedger.objects.filter(created_at__gte=today).aggregate(
        granted=Sum("delta", filter=Q(kind=LedgerKind.GRANT), default=0),
        consumed=Sum("delta", filter=Q(kind=LedgerKind.DEDUCT), default=0),
        refunded=Sum("delta", filter=Q(kind=LedgerKind.REFUND), default=0),
        adjusted=Sum("delta", filter=Q(kind=LedgerKind.ADJUST), default=0),
        compensated=Sum("delta", filter=Q(kind=LedgerKind.COMPENSATE), default=0),
        expired=Sum("delta", filter=Q(kind=LedgerKind.EXPIRE), default=0),
    )
    return {
        "visible": True,
        "by_status": [(label, by_status.get(value, 0), value) for value, label in TaskStatus.choices],
        "total": sum(by_status.values()),
        "failures": failures,
        "stuck": stuck,
        "stuck_total": stuck["pending"] + stuck["processing"],
        "quota": {**quota, "consumed": -quota["consumed"], "expired": -quota["expired"]},
        "since": since,
        "today": today,
    }
