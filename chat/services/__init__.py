"""Conversation operations: every write and read of chat, shared by the consumer, the
REST views, the admin and management commands. Plain synchronous functions, each one
transaction (or one statement), that publish what they change through chat.events.

- access: the gates (`access_group`), the same answer for missing and foreign groups;
- groups: conversations and members;
- sending: sending a message, the delivered and read watermarks (the hot path);
- changes: recall, edit, reaction;
- reading: chat list, history, offline sync, repairs, the periodic tail check;
- search: message search over the caller's groups;
- live: typing and presence, not stored.
"""

from chat.services.access import access_group, access_group_as_admin, message_in_group
from chat.services.changes import edit_message, react_to_message, recall_message
from chat.services.groups import (
    ADD,
    REMOVE,
    change_members,
    create_group,
    direct_peers,
    group_ids_of,
    list_groups,
    list_members,
    moderate_members,
    open_chat_of_new_friends,
    open_direct_chat,
    pair_key,
    sharing_a_group,
    update_group,
)
from chat.services.live import TypingThrottle, last_seen_of, presence_changed, typing
from chat.services.reading import (
    ChatEntry,
    Following,
    SyncState,
    TailState,
    chat_list,
    entries_between,
    following,
    history,
    members_version,
    reactions_of,
    sync_state,
    tail_state,
)
from chat.services.search import (
    MAX_MATCHES,
    MAX_QUERY,
    SearchResult,
    index_new_messages,
    register_sqlite_functions,
    search_messages,
)
from chat.services.sending import (
    SendResult,
    mark_delivered,
    mark_group_read,
    mark_read,
    send_message,
)

__all__ = [
    "ADD",
    "MAX_MATCHES",
    "MAX_QUERY",
    "REMOVE",
    "ChatEntry",
    "Following",
    "SearchResult",
    "SendResult",
    "SyncState",
    "TailState",
    "TypingThrottle",
    "access_group",
    "access_group_as_admin",
    "change_members",
    "chat_list",
    "create_group",
    "direct_peers",
    "edit_message",
    "entries_between",
    "following",
    "group_ids_of",
    "history",
    "index_new_messages",
    "last_seen_of",
    "list_groups",
    "list_members",
    "mark_delivered",
    "mark_group_read",
    "mark_read",
    "members_version",
    "message_in_group",
    "moderate_members",
    "open_chat_of_new_friends",
    "open_direct_chat",
    "pair_key",
    "presence_changed",
    "react_to_message",
    "reactions_of",
    "recall_message",
    "register_sqlite_functions",
    "search_messages",
    "send_message",
    "sharing_a_group",
    "sync_state",
    "tail_state",
    "typing",
    "update_group",
]
