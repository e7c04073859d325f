"""Moderation: conversations with their members, and messages (edited or redacted,
never deleted: a hole in a group's seqs would read as a lost message)."""

from django.contrib import admin

from chat import events
from chat.models import Group, Membership, Message

REDACTED = "[removed by a moderator]"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    readonly_fields = ["delivered_seq", "read_seq", "joined_seq", "joined_at"]


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "mode", "creator", "last_seq", "created_at"]
    list_filter = ["mode"]
    search_fields = ["name"]
    raw_id_fields = ["creator", "last_msg"]
    readonly_fields = ["last_seq", "last_msg", "pair_key"]
    inlines = [MembershipInline]

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
