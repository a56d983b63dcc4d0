from django.contrib import admin

from routing.admin import CallAdmin
from routing.models import Call
from telephony.models import CallEvent, ConnectAttempt


class CallEventInline(admin.TabularInline):
    model = CallEvent
    extra = 0
    fields = ["type", "occurred_at", "received_at", "applied", "outcome"]
    readonly_fields = fields


# A call's admin page lists the telephony events it was built from, above its routing decisions.
admin.site.unregister(Call)


@admin.register(Call)
class CallWithEventsAdmin(CallAdmin):
    inlines = [CallEventInline, *CallAdmin.inlines]


@admin.register(CallEvent)
class CallEventAdmin(admin.ModelAdmin):
    list_display = ["webhook_id", "type", "call", "occurred_at", "applied"]
    list_filter = ["type", "applied"]
    search_fields = ["webhook_id", "call__telephony_call_id"]
    raw_id_fields = ["call"]


@admin.register(ConnectAttempt)
class ConnectAttemptAdmin(admin.ModelAdmin):
    list_display = ["call", "instruction", "attempt", "sent_at", "status_code", "error"]
    list_filter = ["instruction"]
    raw_id_fields = ["call", "decision"]
