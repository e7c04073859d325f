from django.apps import AppConfig


class InfraConfig(AppConfig):
    """rim's infrastructure below the apps: errors, the REST envelope, database
    workers, channel layers, event publishing and the daphne that `manage.py serve`
    runs. No models; installed for its management commands."""

    name = "infra"
