from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from relais.accounts.models import AuditEntry, Membership, User, Workspace

admin.site.register(User, UserAdmin)
admin.site.register(Workspace)
admin.site.register(Membership)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "workspace", "actor", "action", "target_type", "target_id")
    list_filter = ("action",)
