from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from core.errors import ApplicationError
from core.exceptions import current_language
from quota.models import LedgerKind, QuotaLedger
from quota.services import quota_adjust, quota_compensate, quota_grant

GRANT, ADJUST, COMPENSATE = "grant", "adjust", "compensate"


class QuotaChangeForm(forms.Form):
    """Support's quota form. Every change goes through the quota services, so it locks the user,
    writes one ledger row and records who did it and why. Only a grant touches the membership."""

    operation = forms.ChoiceField(
        label=_("操作"),
        choices=[
            (GRANT, _("发放(开通或续费会员,增加配额并延长有效期)")),
            (ADJUST, _("调整(更正余额,可为负数)")),
            (COMPENSATE, _("补偿(客服赠送配额,不改变会员有效期)")),
        ],
        widget=forms.RadioSelect,
        initial=GRANT,
    )
    amount = forms.IntegerField(label=_("数量"), help_text=_("发放、补偿时为正数;调整时正数增加、负数扣减"))
    days = forms.IntegerField(
        label=_("延长天数"), min_value=1, initial=30, required=False, help_text=_("仅发放时使用,调整和补偿时忽略")
    )
    task = forms.UUIDField(
        label=_("补偿的任务"),
        required=False,
        help_text=_("仅补偿时使用(可选):该会员被扣费的任务 ID"),
        widget=forms.TextInput(attrs={"size": 40}),
    )
    reason = forms.CharField(label=_("原因"), max_length=200, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        amount, operation = data.get("amount"), data.get("operation")
        if operation == GRANT:
            if amount is not None and amount <= 0:
                self.add_error("amount", _("发放数量必须为正数"))
            if not data.get("days"):
                self.add_error("days", _("发放时必须填写天数"))
        elif operation == ADJUST and amount == 0:
            self.add_error("amount", _("调整数量不能为 0"))
        elif operation == COMPENSATE and amount is not None and amount <= 0:
            self.add_error("amount", _("补偿数量必须为正数"))
        if operation != GRANT:
            data["days"] = None
        if operation != COMPENSATE:
            data["task"] = None
        elif data.get("task") and not QuotaLedger.objects.filter(
            user=self.user, task_id=data["task"], kind=LedgerKind.DEDUCT
        ).exists():
            self.add_error("task", _("该会员没有这个被扣费的任务"))
        return data

    def save(self, *, actor: User) -> QuotaLedger | None:
        """The ledger row written, or None with the service's refusal added to the form's errors."""
        data = self.cleaned_data
        reason, user_id = data["reason"].strip(), self.user.pk
        try:
            if data["operation"] == GRANT:
                return quota_grant(user_id=user_id, amount=data["amount"], days=data["days"], reason=reason, actor=actor)
            if data["operation"] == COMPENSATE:
                return quota_compensate(
                    user_id=user_id, amount=data["amount"], reason=reason, actor=actor, task_id=data["task"]
                )
            return quota_adjust(user_id=user_id, delta=data["amount"], reason=reason, actor=actor)
        except ApplicationError as error:
            self.add_error(None, error.message(current_language()))
            return None

