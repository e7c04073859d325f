"""The layer events of accounts, published after commit through infra.publish.

`u.<uid>` is the layer group of every connection of one user, on any process: the
events here lock the user's connections out; chat adds its own per-user events.
"""

from infra.publish import publish_on_commit


def user_channel(uid: int) -> str:
    return f"u.{uid}"


def token_revoked(*, uid: int, token_id: int) -> None:
    """A connection logged in with this token stops acting for the user."""
    publish_on_commit(user_channel(uid), {"type": "token.revoked", "token_id": token_id})


def user_deactivated(*, uid: int) -> None:
    """Every connection of the user closes."""
    publish_on_commit(user_channel(uid), {"type": "user.deactivated"})
