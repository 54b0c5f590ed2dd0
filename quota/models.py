from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class LedgerKind(models.TextChoices):
    DEDUCT = "deduct", _("扣减")
    REFUND = "refund", _("退还")
    GRANT = "grant", _("发放")
    ADJUST = "adjust", _("人工调整")
    EXPIRE = "expire", _("过期")

    # A support goodwill credit (SPEC §8): it may name the task it makes up for, but it is not that
    # task's refund, so the one-refund-per-task constraint does not see it.
    COMPENSATE = "compensate", _("补偿")


class QuotaLedger(models.Model):
    """Append-only: every quota move is one row, and a user's balance is the sum of its deltas.

    `task_id` is a plain UUID rather than a foreign key so that the quota app does not depend on
    the tasks app; the unique constraints below make a task charged once and refunded once.
    """

    # The (user, -created_at) index serves look-ups by user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="ledger",
        verbose_name=_("用户"),
        db_index=False,
    )
    delta = models.IntegerField(_("变动"))
    balance_after = models.IntegerField(_("变动后余额"))
    kind = models.CharField(_("类型"), max_length=10, choices=LedgerKind.choices)
    task_id = models.UUIDField(_("任务"), null=True, blank=True)
    reason = models.CharField(_("原因"), max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("操作人"),
        db_index=False,  # indexed below for the rows that have one
    )
    created_at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("配额流水")
        verbose_name_plural = _("配额流水")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="ledger_user_recent"),
            # Staff moves only: the charges and refunds of tasks (nearly every row) have no actor
            # and would each add an entry nobody looks up.
            models.Index(fields=["actor"], condition=models.Q(actor__isnull=False), name="ledger_actor"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["task_id"], condition=models.Q(kind="refund"), name="ledger_one_refund_per_task"
            ),
            models.UniqueConstraint(
                fields=["task_id"], condition=models.Q(kind="deduct"), name="ledger_one_charge_per_task"
            ),
            models.CheckConstraint(condition=models.Q(balance_after__gte=0), name="ledger_balance_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.delta:+d}"
