"""Labels that third-party apps ship as plain strings, made translatable so locale/ can give them
in the request's language (the admin speaks one language per request, SPEC §8)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django_celery_beat.models import PeriodicTask


def translate_third_party_labels() -> None:
    # django-celery-beat names this field in English only; locale/zh_Hans gives its Chinese.
    PeriodicTask._meta.get_field("task").verbose_name = _("Task Name")
    # A column of its task list; without a description the admin shows the property's name.
    PeriodicTask.scheduler.fget.short_description = _("Scheduler")
