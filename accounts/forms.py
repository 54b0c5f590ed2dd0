from __future__ import annotations

from django import forms

from accounts.models import User
from core.errors import ApplicationError
from quota.models import QuotaLedger
from quota.services import quota_adjust, quota_grant

GRANT, ADJUST = "grant", "adjust"


class QuotaChangeForm(forms.Form):
    """Support's "grant / adjust quota" form. Every change goes through the quota services, so it
    locks the user, writes one ledger row and records who did it and why."""

    operation = forms.ChoiceField(
        label="操作",
        choices=[(GRANT, "发放(开通或续费会员,增加配额并延长有效期)"), (ADJUST, "调整(更正余额,可为负数)")],
        widget=forms.RadioSelect,
        initial=GRANT,
    )
    amount = forms.IntegerField(label="数量", help_text="发放时为正数;调整时正数增加、负数扣减")
    days = forms.IntegerField(label="延长天数", min_value=1, initial=30, required=False, help_text="仅发放时使用")
    reason = forms.CharField(label="原因", max_length=200, widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        amount = data.get("amount")
        if data.get("operation") == GRANT:
            if amount is not None and amount <= 0:
                self.add_error("amount", "发放数量必须为正数")
            if not data.get("days"):
                self.add_error("days", "发放时必须填写天数")
        elif amount == 0:
            self.add_error("amount", "调整数量不能为 0")
        return data

    def save(self, *, user: User, actor: User) -> QuotaLedger | None:
        """The ledger row written, or None with the service's refusal added to the form's errors."""
        data = self.cleaned_data
        reason = data["reason"].strip()
        try:
            if data["operation"] == GRANT:
                return quota_grant(
                    user_id=user.pk, amount=data["amount"], days=data["days"], reason=reason, actor=actor
                )
            return quota_adjust(user_id=user.pk, delta=data["amount"], reason=reason, actor=actor)
        except ApplicationError as error:
            self.add_error(None, error.message("zh"))
            return None
