from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    phone = models.CharField(_("手机号"), max_length=20, unique=True, null=True, blank=True)
    is_member = models.BooleanField(_("会员"), default=False)
    # Changed only by the quota services, which write the ledger in the same transaction.
    quota_remaining = models.IntegerField(_("剩余配额"), default=0, editable=False)
    quota_expire_at = models.DateTimeField(_("会员到期"), null=True, blank=True)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")
        permissions = [("adjust_quota", "可发放或调整配额")]
        constraints = [
            models.CheckConstraint(condition=models.Q(quota_remaining__gte=0), name="user_quota_non_negative"),
        ]

    @property
    def is_active_member(self) -> bool:
        return self.is_member and (self.quota_expire_at is None or self.quota_expire_at > timezone.now())
