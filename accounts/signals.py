"""What accounts announces to the apps above it, which it must not import."""

from django.dispatch import Signal

# Sent inside answer_friend's transaction when `user` accepts `friend_id`'s request:
# chat opens their one-to-one chat (chat.apps connects it).
friendship_confirmed = Signal()
