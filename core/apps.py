from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self) -> None:
        # Registers the OpenAPI extension of our authentication class.
        from core import schema  # noqa: F401
