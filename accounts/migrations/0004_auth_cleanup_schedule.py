"""celery-beat runs the daily cleanup of the auth tables (accounts/tasks.py) at 03:30 Beijing
time, when the product's users sleep; support can change the time in the admin."""

from django.db import migrations

SCHEDULES = {
    "过期令牌清理 (accounts.flush_expired_tokens)": "accounts.flush_expired_tokens",
    "过期会话清理 (accounts.clear_sessions)": "accounts.clear_sessions",
}


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="3", day_of_month="*", month_of_year="*", day_of_week="*", timezone="Asia/Shanghai"
    )
    for name, task in SCHEDULES.items():
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": daily})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_support_group"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_schedule, remove_schedule)]
