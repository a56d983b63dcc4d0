import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from customers import services
from customers.audit import record_context_access
from customers.models import AccessReason, CallNote, ContextAccess, Customer, PhoneNumber


class PhoneNumberInline(admin.TabularInline):
    model = PhoneNumber
    extra = 0


class AuditedCustomerViews:
    """An admin opening one customer's (or one note's) page is a read of their context."""

    def customer_ids_shown(self, object_id: str) -> list[int]:
        return [int(object_id)]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            record_context_access(
                customer_ids=self.customer_ids_shown(object_id),
                user=request.user,
                reason=AccessReason.ADMIN,
            )
        return response


@admin.register(Customer)
class CustomerAdmin(AuditedCustomerViews, admin.ModelAdmin):
    list_display = ["name", "consent", "pace", "preferred_channel", "customer_since", "erased_at"]
    list_filter = ["consent", "pace", "preferred_channel", "survey_trust"]
    search_fields = ["name", "email", "external_id", "phones__number"]
    inlines = [PhoneNumberInline]
    raw_id_fields = [
        "pace_set_by",
        "hold_tolerance_set_by",
        "preferred_channel_set_by",
        "consent_set_by",
    ]
    readonly_fields = ["erased_at"]
    actions = ["export_as_json", "erase_personal_data"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # Customers are erased (personal data removed, call statistics kept), never deleted.
        return False

    @admin.action(description="Export selected customers as JSON (audited)")
    def export_as_json(self, request: HttpRequest, queryset: QuerySet[Customer]) -> HttpResponse:
        documents = [
            services.export_customer(customer=customer, exported_by=request.user)
            for customer in queryset
        ]
        response = HttpResponse(
            json.dumps(documents if len(documents) > 1 else documents[0], indent=2),
            content_type="application/json",
        )
        response["Content-Disposition"] = 'attachment; filename="customers-export.json"'
        return response

    @admin.action(description="Erase personal data of selected customers")
    def erase_personal_data(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        erased = 0
        for customer in queryset.filter(erased_at__isnull=True):
            services.erase_customer(customer=customer, erased_by=request.user)
            erased += 1
        self.message_user(request, f"Erased {erased} customer(s).", messages.SUCCESS)


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "label"]
    search_fields = ["number", "customer__name"]
    raw_id_fields = ["customer"]


@admin.register(CallNote)
class CallNoteAdmin(AuditedCustomerViews, admin.ModelAdmin):
    list_display = ["customer", "author", "occasion", "created_at"]
    search_fields = ["customer__name", "text"]
    raw_id_fields = ["customer", "call", "author"]
    list_select_related = ["customer", "author"]

    def customer_ids_shown(self, object_id: str) -> list[int]:
        return list(CallNote.objects.filter(id=object_id).values_list("customer_id", flat=True))


@admin.register(ContextAccess)
class ContextAccessAdmin(admin.ModelAdmin):
    """The access log: admins read it; nobody adds, changes or removes a row here."""

    list_display = ["accessed_at", "username", "customer_id", "reason", "reason_text", "call_id"]
    list_filter = ["reason"]
    search_fields = ["username", "=customer__id", "reason_text"]
    date_hierarchy = "accessed_at"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
