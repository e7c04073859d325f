"""Moderation of users (search, deactivate), friendships and login tokens."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from accounts import services
from accounts.models import Friendship, Token, User


class RimUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


class RimUserCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["account", "name"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = RimUserChangeForm
    add_form = RimUserCreationForm
    list_display = ["id", "account", "name", "email", "is_active", "is_staff", "date_joined"]
    list_filter = ["is_active", "is_staff"]
    search_fields = ["account", "name", "email"]
    ordering = ["id"]
    actions = ["deactivate"]
    fieldsets = [
        (None, {"fields": ["account", "password"]}),
        ("Profile", {"fields": ["name", "avatar", "email"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["account", "name", "password1", "password2"]})
    ]

    def save_model(self, request, obj: User, form, change: bool) -> None:
        """Unticking "active" locks the user out as the action does: tokens revoked,
        open connections closed."""
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            services.deactivate_user(user=obj)

    @admin.action(description="Deactivate the selected users (revokes tokens, closes connections)")
    def deactivate(self, request, queryset) -> None:
        for user in queryset:
            services.deactivate_user(user=user)


@admin.register(Friendship)
class FriendshipAdmin(admin.ModelAdmin):
    list_display = ["id", "from_user", "to_user", "status", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["from_user", "to_user"]
    search_fields = ["from_user__account", "to_user__account"]


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    """Only the key's hash is stored; a moderator can see and revoke sessions, never
    use one."""

    list_display = ["id", "user", "hash_prefix", "created_at", "expires_at"]
    search_fields = ["user__account"]
    list_select_related = ["user"]
    fields = ["user", "hash_prefix", "created_at", "expires_at"]
    readonly_fields = ["user", "hash_prefix", "created_at", "expires_at"]

    @admin.display(description="key hash")
    def hash_prefix(self, token: Token) -> str:
        return f"{token.key_hash[:12]}…"

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj: Token) -> None:
        services.revoke_token(token_id=obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for token in queryset:
            services.revoke_token(token_id=token.pk)
