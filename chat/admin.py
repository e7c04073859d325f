"""Moderation: conversations with their members, messages, and the moderation log.

Thin over chat.services: members added or removed here, and messages removed here
(a recall by a moderator), change exactly what the same change through the API
changes and push the same events; each action is written to the moderation log.
Messages are never deleted: a hole in a group's seqs would read as a lost message.
"""

import uuid

from django.contrib import admin, messages

from chat import services
from chat.models import Group, Membership, Message, ModerationLog
from infra.errors import RimError


def is_one_to_one(group: Group | None) -> bool:
    return group is not None and group.mode == Group.ONE_TO_ONE


class MembershipInline(admin.TabularInline):
    """A one-to-one chat is its pair (its pair_key says so): its members are shown,
    not edited, as group/user/change refuses for it too."""

    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    readonly_fields = ["delivered_seq", "read_seq", "read_count", "joined_seq", "joined_at"]

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
    readonly_fields = [
        "mode",
        "last_seq",
        "message_count",
        "members_version",
        "last_msg",
        "pair_key",
    ]
    inlines = [MembershipInline]

    def has_add_permission(self, request) -> bool:
        # Conversations are created by their members (group/create), which makes the
        # creator an admin and a one-to-one chat unique per pair.
        return False

    def save_formset(self, request, form, formset, change) -> None:
        """The member rows' changes, made by chat.services as one moderation."""
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        # Only for the admin's change message (it reads the formset's new, changed and
        # deleted objects): commit=False writes nothing.
        formset.save(commit=False)
        add, remove, roles = members_changed(formset)
        if not (add or remove or roles):
            return
        services.moderate_members(
            moderator=request.user, gid=form.instance.pk, add=add, remove=remove, roles=roles
        )


def members_changed(formset) -> tuple[dict[int, int], set[int], dict[int, int]]:
    """What the inline's rows ask for: users to add (with their role), users to
    remove, and new roles. A row whose user was replaced removes the old user and adds
    the new one."""
    add: dict[int, int] = {}
    remove: set[int] = set()
    roles: dict[int, int] = {}
    for form in formset.initial_forms:
        if not form.has_changed() and form not in formset.deleted_forms:
            continue
        before = form.initial["user"]
        if form in formset.deleted_forms:
            remove.add(before)
        elif "user" in form.changed_data:
            remove.add(before)
            add[form.cleaned_data["user"].pk] = form.cleaned_data["role"]
        elif "role" in form.changed_data:
            roles[before] = form.cleaned_data["role"]
    for form in formset.extra_forms:
        if form.has_changed() and form not in formset.deleted_forms:
            add[form.cleaned_data["user"].pk] = form.cleaned_data["role"]
    return add, remove, roles


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "sender", "group", "kind", "short_content", "recalled", "created_at"]
    list_filter = [
        "kind",
        "recalled",
        ("group", admin.RelatedOnlyFieldListFilter),
        ("sender", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["content"]
    list_select_related = ["sender", "group"]
    raw_id_fields = ["sender", "group", "reply_to"]
    fields = ["group", "seq", "sender", "kind", "content", "reply_to", "recalled", "edited_at"]
    readonly_fields = fields
    actions = ["recall"]

    @admin.display(description="content")
    def short_content(self, message: Message) -> str:
        return message.content[:80]

    @admin.action(description="Recall the selected messages (erased for everyone)")
    def recall(self, request, queryset) -> None:
        recalled = 0
        for message in queryset:
            try:
                result = services.recall_message(
                    user_id=request.user.pk,
                    gid=message.group_id,
                    msg_id=message.pk,
                    client_msg_id=f"admin-{uuid.uuid4().hex}",
                    moderator=request.user,
                )
            except RimError as refused:
                self.message_user(request, f"{message}: {refused.detail}", messages.ERROR)
                continue
            recalled += result.seq is not None
        self.message_user(request, f"{recalled} message(s) recalled.", messages.SUCCESS)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModerationLog)
class ModerationLogAdmin(admin.ModelAdmin):
    """Who removed what, and when. Written by the actions above, never by hand."""

    list_display = ["created_at", "moderator", "action", "group", "message", "detail"]
    list_filter = ["action", ("moderator", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["moderator", "group"]
    search_fields = ["detail", "moderator__account"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
