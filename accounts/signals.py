"""Deactivating a user anywhere (admin form, shell) locks them out at once."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts import services
from accounts.models import User


@receiver(post_save, sender=User)
def lock_out_deactivated(sender, instance: User, created: bool, **kwargs) -> None:
    if not created and not instance.is_active:
        services.deactivate_user(user=instance)
