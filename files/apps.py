from django.apps import AppConfig


class FilesConfig(AppConfig):
    name = "files"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The receiver that removes a deleted row's stored objects.
        from files import services  # noqa: F401
