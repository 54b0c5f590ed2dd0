from __future__ import annotations

import math
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework.throttling import BaseThrottle

from accounts.lockout import admin_login_attempt, admin_login_succeeded
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
        elif (
            data.get("task")
            and not QuotaLedger.objects.filter(user=self.user, task_id=data["task"], kind=LedgerKind.DEDUCT).exists()
        ):
            self.add_error("task", _("该会员没有这个被扣费的任务"))
        return data

    def save(self, *, actor: User) -> QuotaLedger | None:
        """The ledger row written, or None with the service's refusal added to the form's errors."""
        data = self.cleaned_data
        reason, user_id = data["reason"].strip(), self.user.pk
        try:
            if data["operation"] == GRANT:
                return quota_grant(
                    user_id=user_id, amount=data["amount"], days=data["days"], reason=reason, actor=actor
                )
            if data["operation"] == COMPENSATE:
                return quota_compensate(
                    user_id=user_id, amount=data["amount"], reason=reason, actor=actor, task_id=data["task"]
                )
            return quota_adjust(user_id=user_id, delta=data["amount"], reason=reason, actor=actor)
        except ApplicationError as error:
            self.add_error(None, error.message(current_language()))
            return None


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's login form with the lockout of accounts.lockout, and the staff password rules
    checked again on the password typed: a member made staff keeps a password chosen under the
    member rules, and this is the one place where the password itself is seen."""

    def clean(self) -> dict[str, Any]:
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if username is None or not password or self.request is None:
            return super().clean()
        # The client address as the API's throttles see it, through TRUSTED_PROXIES.
        address = BaseThrottle().get_ident(self.request)  # type: ignore[arg-type]
        if not admin_login_attempt(username=username, address=address):
            minutes = math.ceil(settings.ADMIN_LOGIN_LOCKOUT_SECONDS / 60)
            raise ValidationError(
                f"Too many failed logins. Try again in {minutes} minutes."
                if current_language() == "en"
                else f"登录失败次数过多,请 {minutes} 分钟后再试。",
                code="locked",
            )
        cleaned = super().clean()
        admin_login_succeeded(username=username, address=address)
        try:
            validate_password(password, self.user_cache)
        except ValidationError as weak:
            self.user_cache = None
            raise ValidationError(
                "Your password does not meet the staff password rules; ask a superuser to set a new one."
                if current_language() == "en"
                else "密码不符合员工密码要求,请联系超级管理员重设密码。",
                code="weak_password",
            ) from weak
        return cleaned
