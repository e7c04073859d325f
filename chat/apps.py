from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.signals import friendship_confirmed
        from chat.services import open_chat_of_new_friends

        friendship_confirmed.connect(open_chat_of_new_friends, dispatch_uid="rim.open_chat")
