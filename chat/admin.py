"""Moderation: conversations with their members, and messages (edited or redacted,
never deleted: a hole in a group's seqs would read as a lost message)."""

from django.contrib import admin

from chat import events
from chat.models import Group, Membership, Message

REDACTED = "[removed by a moderator]"


def is_one_to_one(group: Group | None) -> bool:
    return group is not None and group.mode == Group.ONE_TO_ONE


class MembershipInline(admin.TabularInline):
    """A one-to-one chat is its pair (its pair_key says so): its members are shown,
    not edited, as group/user/change refuses for it too."""

    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    readonly_fields = ["delivered_seq", "read_seq", "joined_seq", "joined_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return not is_one_to_one(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return not is_one_to_one(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not is_one_to_one(obj) and super().has_delete_permission(request, obj)


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "mode", "creator", "last_seq", "created_at"]
    list_filter = ["mode"]
    search_fields = ["name"]
    raw_id_fields = ["creator", "last_msg"]
    # The mode is fixed at creation: a one-to-one chat turned into a group would keep
    # its pair_key, and a group turned one-to-one would have none.
    readonly_fields = ["mode", "last_seq", "last_msg", "pair_key"]
    inlines = [MembershipInline]

    def has_add_permission(self, request) -> bool:
        # Conversations are created by their members (group/create), which makes the
        # creator an admin and a one-to-one chat unique per pair.
        return False

    def save_formset(self, request, form, formset, change) -> None:
        """Members added or removed here count as through the API: a newcomer starts at
        the group's current seq (no unread backlog), and the users' open connections
        start or stop receiving the group at once."""
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        gid = form.instance.pk
        seq = Group.objects.select_for_update().get(pk=gid).last_seq
        memberships = formset.save(commit=False)
        moved = [m for m, fields in formset.changed_objects if "user" in fields]
        previous = dict(
            Membership.objects.filter(pk__in=[m.pk for m in moved]).values_list("pk", "user_id")
        )
        for membership in formset.deleted_objects:
            membership.delete()
            events.member_left(uid=membership.user_id, gid=gid)
        joining = [*formset.new_objects, *moved]
        for membership in joining:
            membership.joined_seq = membership.delivered_seq = membership.read_seq = seq
        for membership in memberships:
            membership.save()
        for membership in moved:
            events.member_left(uid=previous[membership.pk], gid=gid)
        for membership in joining:
            events.member_joined(uid=membership.user_id, gid=gid, seq=seq)
        formset.save_m2m()


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "sender", "group", "kind", "short_content", "created_at"]
    list_filter = [
        "kind",
        ("group", admin.RelatedOnlyFieldListFilter),
        ("sender", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["content"]
    list_select_related = ["sender", "group"]
    raw_id_fields = ["sender", "group"]
    readonly_fields = ["group", "seq", "sender", "client_msg_id", "created_at", "updated_at"]
    actions = ["redact"]

    @admin.display(description="content")
    def short_content(self, message: Message) -> str:
        return message.content[:80]

    @admin.action(description="Redact the selected messages")
    def redact(self, request, queryset) -> None:
        for message in queryset:
            message.content = REDACTED
            message.kind = Message.TEXT
            message.save(update_fields=["content", "kind", "updated_at"])

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
