"""Conversations, memberships with their watermarks, and messages.

A message is stored once, whatever the group size: who has received or read it is
derived from the members' watermarks (`Membership.delivered_seq` / `read_seq`) against
the message's position in its group (`Message.seq`).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Group(models.Model):
    """A conversation. One-to-one chats are two-member groups of mode ONE_TO_ONE."""

    ONE_TO_ONE = 1
    GROUP = 2
    MODE_CHOICES = [(ONE_TO_ONE, "one-to-one"), (GROUP, "group")]

    name = models.CharField(max_length=128, blank=True)
    avatar = models.CharField(max_length=512, blank=True)
    mode = models.SmallIntegerField(choices=MODE_CHOICES, default=GROUP)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The seq of the newest message (0: none yet); allocated under this row's lock.
    last_seq = models.BigIntegerField(default=0)
    last_msg = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "<low uid>:<high uid>" for one-to-one chats, so a pair has at most one.
    pair_key = models.CharField(max_length=64, null=True, blank=True, unique=True)

    def __str__(self) -> str:
        return self.name or f"group {self.pk}"


class Membership(models.Model):
    MEMBER = 1
    ADMIN = 2
    ROLE_CHOICES = [(MEMBER, "member"), (ADMIN, "admin")]

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.SmallIntegerField(choices=ROLE_CHOICES, default=MEMBER)
    # Watermarks: messages with seq <= delivered_seq reached one of the user's devices;
    # seq <= read_seq were read. They only rise.
    delivered_seq = models.BigIntegerField(default=0)
    read_seq = models.BigIntegerField(default=0)
    # The group's last_seq when the user joined.
    joined_seq = models.BigIntegerField(default=0)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "user"], name="one_membership"),
        ]
        indexes = [models.Index(fields=["user", "group"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.group_id}"


class Message(models.Model):
    TEXT = "Text"
    RICH_TEXT = "RichText"
    IMAGE = "Image"
    KIND_CHOICES = [(TEXT, "text"), (RICH_TEXT, "rich text"), (IMAGE, "image")]

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, default=TEXT)
    content = models.TextField()
    client_msg_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "seq"], name="one_message_per_seq"),
            # A retried send (same sender, same clientMsgId) is the same message.
            models.UniqueConstraint(fields=["sender", "client_msg_id"], name="idempotent_send"),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} (#{self.seq} in {self.group_id})"
