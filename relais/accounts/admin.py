from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from relais.accounts.actions import do_remove_member
from relais.accounts.models import AuditEntry, Membership, User, Workspace

admin.site.register(User, UserAdmin)
admin.site.register(Workspace)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Removing a member here goes through the action: audited, conversations handed back."""

    list_display = ("workspace", "user", "role")

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        do_remove_member(obj.workspace, obj.user, actor=None)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("workspace", "user"):
            do_remove_member(membership.workspace, membership.user, actor=None)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "workspace", "actor", "action", "target_type", "target_id")
    list_filter = ("action",)
