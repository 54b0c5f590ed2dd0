from django.apps import AppConfig


class AimodelConfig(AppConfig):
    name = "aimodel"
    verbose_name = "AI 模型"
