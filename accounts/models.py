"""Users, their login tokens and their friendships."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, account: str, password: str | None = None, **fields):
        user = self.model(account=account, **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, account: str, password: str | None = None, **fields):
        fields.setdefault("name", account)
        return self.create_user(account, password, is_staff=True, is_superuser=True, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A rim user; `account` is the unique login name rim's clients send."""

    account = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=64)
    avatar = models.CharField(max_length=512, blank=True)
    email = models.CharField(max_length=254, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Inactive users can neither log in nor use a token."
    )
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # When the user's last connection closed for good (presence's "last seen").
    last_seen = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "account"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    def __str__(self) -> str:
        return self.account


class Token(models.Model):
    """One login session (one device). Only a SHA-256 of the key is stored, so a copy
    of the database hands out no usable token."""

    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"token {self.key_hash[:8]}… of {self.user_id}"


class Friendship(models.Model):
    """A directed edge: a request from `from_user` (APPLY) or, once confirmed, one of
    the two FRIENDS edges that answering creates."""

    APPLY = 0
    FRIENDS = 1
    STATUS_CHOICES = [(APPLY, "apply"), (FRIENDS, "friends")]

    from_user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="friendships_out")
    to_user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="friendships_in")
    status = models.SmallIntegerField(choices=STATUS_CHOICES, default=APPLY)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["from_user", "to_user"], name="one_friendship_per_direction"
            ),
            models.CheckConstraint(
                condition=~models.Q(from_user=models.F("to_user")),
                name="no_friendship_with_self",
            ),
        ]
        indexes = [models.Index(fields=["to_user", "status"])]

    def __str__(self) -> str:
        return f"{self.from_user_id} → {self.to_user_id} ({self.get_status_display()})"
