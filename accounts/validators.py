"""Password rules beyond Django's own (AUTH_PASSWORD_VALIDATORS)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import MinimumLengthValidator

from core.exceptions import current_language


class StaffMinimumLengthValidator(MinimumLengthValidator):
    """A longer minimum for staff and superusers, who open the admin console. Django gives each
    validator the user the password is for, so members keep the general minimum. A member made
    staff later keeps a password chosen under the member rule; the admin login checks it again
    (accounts.forms.AdminLoginForm)."""

    def validate(self, password: str, user: Any = None) -> None:
        if user is not None and (user.is_staff or user.is_superuser):
            super().validate(password, user)

    def get_error_message(self) -> str:
        if current_language() == "en":
            return f"This password is too short: staff passwords must contain at least {self.min_length} characters."
        return f"密码太短:员工账号的密码至少需要 {self.min_length} 个字符。"

    def get_help_text(self) -> str:
        if current_language() == "en":
            return f"Staff passwords must contain at least {self.min_length} characters."
        return f"员工账号的密码至少需要 {self.min_length} 个字符。"
