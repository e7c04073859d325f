"""Conversations, memberships with their watermarks, messages and their changes.

A message is stored once, whatever the group size: who has received or read it is
derived from the members' watermarks (`Membership.delivered_seq` / `read_seq`) against
the message's position in its group (`Message.seq`).

A group's entries form one gap-free sequence (`seq` 1, 2, 3, ...): its messages and
the changes made to them (recall, edit, reaction: `Change`). Connections deliver that
sequence in order and repair its holes from here, and offline sync pushes what lies
above a member's delivered watermark, so a change reaches a client that was away the
same way a message does. Unread counts count messages only: `Message.number` is a
message's place among the group's messages, `Group.message_count` the newest, and
`Membership.read_count` the number read.
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
    # The seq of the newest entry (0: none yet); allocated under this row's lock.
    last_seq = models.BigIntegerField(default=0)
    # How many messages (not changes) the group has: the newest Message.number.
    message_count = models.BigIntegerField(default=0)
    # Rises with every change of the members: a connection that saw another version
    # checks its membership before it pushes (no lost layer event widens access).
    members_version = models.BigIntegerField(default=0)
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
    # How many of the group's messages are read (Message.number at read_seq): unread is
    # Group.message_count - read_count, without counting rows.
    read_count = models.BigIntegerField(default=0)
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
    FILE = "File"
    KIND_CHOICES = [(TEXT, "text"), (RICH_TEXT, "rich text"), (IMAGE, "image"), (FILE, "file")]

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    # Its place among the group's messages (1, 2, ...), for unread counts.
    number = models.BigIntegerField(default=0)
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, default=TEXT)
    # Erased ("") when the message is recalled.
    content = models.TextField()
    client_msg_id = models.CharField(max_length=64)
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recalled = models.BooleanField(default=False)
    edited_at = models.DateTimeField(null=True, blank=True)
    # The upload an Image or File message carries (its URL is the content): a recall
    # deletes it once no other message carries it.
    file = models.ForeignKey(
        "files.File", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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


class Change(models.Model):
    """A recall, edit or reaction: an entry in its group's sequence, so that it is
    delivered, repaired and synced like a message. It holds no message content: a
    recall must leave none behind; an edit's text lives in its message."""

    RECALL = "Recall"
    EDIT = "Edit"
    REACT = "React"
    KIND_CHOICES = [(RECALL, "recall"), (EDIT, "edit"), (REACT, "reaction")]

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="changes")
    seq = models.BigIntegerField()
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="changes")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=KIND_CHOICES)
    # React only: the emoji, and whether the actor's reaction is now on or off.
    emoji = models.CharField(max_length=32, blank=True)
    on = models.BooleanField(null=True)
    client_msg_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "seq"], name="one_change_per_seq"),
            # A retried Recall, Edit or React is the same change (a React is not
            # toggled back by its retry).
            models.UniqueConstraint(fields=["actor", "client_msg_id"], name="idempotent_change"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of message {self.message_id} (#{self.seq} in {self.group_id})"


class Reaction(models.Model):
    """One user's emoji on one message."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user", "emoji"], name="one_reaction"),
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user_id} on {self.message_id}"


class ModerationLog(models.Model):
    """Who removed what, and when: written by every moderator action in the admin."""

    RECALL = "recall"
    MEMBERS = "members"
    ACTION_CHOICES = [(RECALL, "recalled a message"), (MEMBERS, "changed members")]

    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=16, choices=ACTION_CHOICES)
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.moderator} {self.get_action_display()} in {self.group_id}"
