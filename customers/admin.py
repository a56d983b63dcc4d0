from django.contrib import admin

from customers.models import CallNote, Customer, PhoneNumber


class PhoneNumberInline(admin.TabularInline):
    model = PhoneNumber
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "consent", "pace", "preferred_channel", "customer_since"]
    list_filter = ["consent", "pace", "preferred_channel", "survey_trust"]
    search_fields = ["name", "email", "external_id", "phones__number"]
    inlines = [PhoneNumberInline]
    raw_id_fields = [
        "pace_set_by",
        "hold_tolerance_set_by",
        "preferred_channel_set_by",
        "consent_set_by",
    ]


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "label"]
    search_fields = ["number", "customer__name"]
    raw_id_fields = ["customer"]


@admin.register(CallNote)
class CallNoteAdmin(admin.ModelAdmin):
    list_display = ["customer", "author", "occasion", "created_at"]
    search_fields = ["customer__name", "text"]
    raw_id_fields = ["customer", "call", "author"]
    list_select_related = ["customer", "author"]
