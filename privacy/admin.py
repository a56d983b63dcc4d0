"""The customer's admin page lives here, not in customers/, because its actions export and
erase, which span customers, calls and events. Opening a customer's page is an audited read."""

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from customers.admin import AuditedCustomerViews, PhoneNumberInline
from customers.models import Customer
from privacy import services


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
    customer_field = "pk"
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
