from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from accounts.signals import friendship_confirmed
        from chat.services import open_chat_of_new_friends, register_sqlite_functions

        friendship_confirmed.connect(open_chat_of_new_friends, dispatch_uid="rim.open_chat")
        connection_created.connect(register_sqlite_functions, dispatch_uid="rim.sqlite_functions")
