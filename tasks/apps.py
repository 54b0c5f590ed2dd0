from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = _("任务")

    def ready(self) -> None:
        from core.metrics import register_scrape_collector
        from tasks.metrics import TaskStateCollector

        register_scrape_collector(TaskStateCollector())
