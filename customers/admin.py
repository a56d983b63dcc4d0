from django.contrib import admin

from customers.audit import record_context_access
from customers.models import AccessReason, CallNote, ContextAccess, PhoneNumber


class PhoneNumberInline(admin.TabularInline):
    model = PhoneNumber
    extra = 0


class AuditedCustomerViews:
    """An admin opening one customer's (or one note's, or number's) page is a read of their
    context, and so is a list or a search: one row per customer on the page shown."""

    customer_field = "customer_id"

    def customer_ids_shown(self, object_id: str) -> list[int]:
        return list(
            self.model.objects.filter(pk=object_id)
            .exclude(**{self.customer_field: None})
            .values_list(self.customer_field, flat=True)
        )

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if request.method == "GET" and response.status_code == 200 and changelist is not None:
            record_context_access(
                customer_ids=[
                    customer_id
                    for shown in changelist.result_list
                    # A call from a number nobody owns shows no customer.
                    if (customer_id := getattr(shown, self.customer_field)) is not None
                ],
                user=request.user,
                reason=AccessReason.ADMIN,
            )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            record_context_access(
                customer_ids=self.customer_ids_shown(object_id),
                user=request.user,
                reason=AccessReason.ADMIN,
            )
        return response


@admin.register(PhoneNumber)
class PhoneNumberAdmin(AuditedCustomerViews, admin.ModelAdmin):
    list_display = ["number", "customer", "label"]
    search_fields = ["number", "customer__name"]
    raw_id_fields = ["customer"]


@admin.register(CallNote)
class CallNoteAdmin(AuditedCustomerViews, admin.ModelAdmin):
    list_display = ["customer", "author", "occasion", "created_at"]
    search_fields = ["customer__name", "text"]
    raw_id_fields = ["customer", "author"]
    list_select_related = ["customer", "author"]


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
