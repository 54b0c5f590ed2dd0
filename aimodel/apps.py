from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AimodelConfig(AppConfig):
    name = "aimodel"
    verbose_name = _("AI 模型")
