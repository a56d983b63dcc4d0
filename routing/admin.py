from django.contrib import admin
from django.forms.models import BaseInlineFormSet

from customers.admin import AuditedCustomerViews
from routing.models import (
    Agent,
    AgentStatusChange,
    Call,
    Offer,
    Queue,
    RoutingDecision,
    WrapUpCode,
)


class WrapUpCodeFormSet(BaseInlineFormSet):
    """A queue's active codes have a key and a label each of their own. The database says so too
    (conditional unique constraints), but a form does not check those: here the clash is a
    message on the form instead of a failed save."""

    def clean(self) -> None:
        super().clean()
        keys: set[int] = set()
        labels: set[str] = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data.get("active") or data.get("DELETE"):
                continue
            key, label = data.get("key"), (data.get("label") or "").strip()
            if key in keys:
                form.add_error("key", f"Another active code has the key {key}.")
            if label in labels:
                form.add_error("label", f"Another active code is “{label}”.")
            keys.add(key)
            labels.add(label)


class WrapUpCodeInline(admin.TabularInline):
    """A queue's wrap-up codes, edited with the queue. Retire a code (untick active) rather than
    delete it: calls keep its label either way."""

    model = WrapUpCode
    formset = WrapUpCodeFormSet
    extra = 1
    fields = ["key", "label", "promises_call_back", "active"]
    ordering = ["-active", "key"]


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "last_agent_wait_seconds",
        "hold_averse_wait_seconds",
        "offer_timeout_seconds",
        "wrap_up_code_required",
    ]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [WrapUpCodeInline]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = [
        "display_name",
        "telephony_identity",
        "status",
        "not_ready_reason",
        "status_changed_at",
    ]
    list_filter = ["status", "not_ready_reason", "queues"]
    readonly_fields = ["not_ready_reason"]
    search_fields = ["display_name", "telephony_identity", "user__username"]
    filter_horizontal = ["queues"]
    raw_id_fields = ["user"]


@admin.register(AgentStatusChange)
class AgentStatusChangeAdmin(admin.ModelAdmin):
    list_display = [
        "agent",
        "previous_status",
        "status",
        "not_ready_reason",
        "changed_at",
        "changed_by",
        "reason",
    ]
    list_select_related = ["agent", "changed_by"]


class RoutingDecisionInline(admin.TabularInline):
    model = RoutingDecision
    extra = 0
    fields = ["reason", "agent", "decided_at", "caller_waited_ms", "took_ms"]
    readonly_fields = fields


@admin.register(Call)
class CallAdmin(AuditedCustomerViews, admin.ModelAdmin):
    """Lists the caller's number and name: its lists, searches and pages are audited reads."""

    list_display = [
        "telephony_call_id",
        "from_e164",
        "queue",
        "customer",
        "agent",
        "state",
        "wrap_up_label",
        "created_at",
    ]
    list_filter = ["state", "queue", "call_back_promised"]
    search_fields = ["telephony_call_id", "from_e164", "customer__name"]
    raw_id_fields = ["customer", "agent", "last_agent", "candidates", "wrap_up_code"]
    list_select_related = ["queue", "customer", "agent"]
    inlines = [RoutingDecisionInline]


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = ["call", "agent", "state", "offered_at", "responded_at"]
    list_filter = ["state"]
    raw_id_fields = ["call", "agent"]


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(admin.ModelAdmin):
    list_display = ["call", "reason", "agent", "decided_at", "took_ms"]
    list_filter = ["reason"]
    raw_id_fields = ["call", "agent", "offer"]
