"""The gates every conversation operation goes through. They answer the same for "no
such group" and "not yours", so that group ids cannot be probed."""

from chat.models import Membership, Message
from infra.errors import Forbidden, NotMember, UnknownMessage


def access_group(*, user_id: int, gid: int) -> Membership:
    """`user_id`'s membership of `gid`, with the group loaded."""
    membership = (
        Membership.objects.select_related("group").filter(group_id=gid, user_id=user_id).first()
    )
    if membership is None:
        raise NotMember(f"user {user_id} is not a member of group {gid}")
    return membership


def access_group_as_admin(*, user_id: int, gid: int) -> Membership:
    membership = access_group(user_id=user_id, gid=gid)
    if membership.role != Membership.ADMIN:
        raise Forbidden("only a group admin may do this")
    return membership


def message_in_group(*, gid: int, msg_id: int) -> Message:
    message = Message.objects.filter(pk=msg_id, group_id=gid).first()
    if message is None:
        raise UnknownMessage(f"message {msg_id} is not in group {gid}")
    return message
