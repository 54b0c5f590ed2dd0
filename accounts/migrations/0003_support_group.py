"""The `support` group: what support staff need for their day in the admin, and nothing more.

They look at users, tasks, the ledger and prompt templates, move quota through the grant/adjust
form (which writes the ledger) and run the task actions (which go through the task services).
They get no add, change or delete permission on any model, so they cannot edit users, roles or
ledger rows directly. Permissions are created here because post_migrate, which normally creates
them, runs only after every migration."""

from django.db import migrations

GROUP = "support"

# (app label, model, codename, name of a permission post_migrate would create the same way)
PERMISSIONS = [
    ("accounts", "user", "view_user", "Can view 用户"),
    ("accounts", "user", "adjust_quota", "可发放或调整配额"),
    ("quota", "quotaledger", "view_quotaledger", "Can view 配额流水"),
    ("tasks", "task", "view_task", "Can view 任务"),
    ("tasks", "task", "run_task_actions", "可执行任务操作(失败退款、重试、补退)"),
    ("tasks", "taskevent", "view_taskevent", "Can view 状态变更"),
    ("aimodel", "prompttemplate", "view_prompttemplate", "Can view 提示词模板"),
]


def create_support_group(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permissions = []
    for app_label, model, codename, name in PERMISSIONS:
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        permission, _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        permissions.append(permission)
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.set(permissions)


def remove_support_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_adjust_quota_permission"),
        ("quota", "0001_initial"),
        ("tasks", "0003_task_actions_permission_retry_of"),
        ("aimodel", "0002_seed_prompt_templates"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(create_support_group, remove_support_group)]
