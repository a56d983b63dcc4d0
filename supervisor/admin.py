from django.contrib import admin

from supervisor.models import CallBack


@admin.register(CallBack)
class CallBackAdmin(admin.ModelAdmin):
    """Who called back which abandoned caller, and when: read only, like any record of who did
    what."""

    list_display = ["call", "username", "called_back_at"]
    search_fields = ["call__telephony_call_id", "username"]
    readonly_fields = ["call", "called_back_by", "username", "called_back_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
