from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from quota.services import quota_grant

DEMO_ACCOUNTS = (
    # username, password, role
    ("demo", "demo-pass-2026", "member"),
    ("support", "support-pass-2026", "support"),
    ("admin", "admin-pass-2026", "superuser"),
)


class Command(BaseCommand):
    help = "Embedded default only: create the demo member, support and admin users and print their credentials."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.EMBEDDED:
            raise CommandError("bootstrap_demo only runs on the embedded default (DATABASE_URL unset).")
        with transaction.atomic():
            for username, password, role in DEMO_ACCOUNTS:
                user, created = User.objects.get_or_create(username=username)
                if created:
                    user.set_password(password)
                    user.is_staff = role in ("support", "superuser")
                    user.is_superuser = role == "superuser"
                    user.save()
                if role == "support":
                    group = Group.objects.filter(name="support").first()
                    if group is not None:
                        user.groups.add(group)
                if role == "member" and user.quota_remaining == 0:
                    quota_grant(user_id=user.pk, amount=100, days=365, reason="演示账号")
        self.stdout.write("Demo accounts (username / password):")
        for username, password, role in DEMO_ACCOUNTS:
            self.stdout.write(f"  {role:<10} {username} / {password}")
