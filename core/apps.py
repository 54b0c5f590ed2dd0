from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self) -> None:
        # Registers the OpenAPI extension of our authentication class.
        from core import schema  # noqa: F401
        from core.labels import translate_third_party_labels

        translate_third_party_labels()
