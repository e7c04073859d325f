"""Moderation of uploaded files: list and search them, and delete them (rows and stored
objects alike; the objects go after the commit, see files.services)."""

from django.contrib import admin

from files import services
from files.models import File


@admin.register(File)
class FileAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "name", "size", "mime", "sent_at", "created_at"]
    list_filter = ["mime"]
    search_fields = ["name", "owner__account", "key"]
    list_select_related = ["owner"]
    date_hierarchy = "created_at"
    fields = [
        "owner",
        "name",
        "size",
        "mime",
        "width",
        "height",
        "download",
        "created_at",
        "sent_at",
    ]
    readonly_fields = fields

    @admin.display(description="download")
    def download(self, file: File) -> str:
        return services.file_url(file)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
