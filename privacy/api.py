"""The customers REST API. Every read goes through who may see a customer (privacy.selectors)
and is audited: `_authorise_read` decides, `_read_customer` records the access before anything
is shown."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from customers import selectors, services
from customers.audit import record_context_access
from customers.models import AccessReason, Channel, Consent, Customer, Pace, Provenance
from customers.phone_numbers import normalise_phone_number
from privacy import services as privacy_services
from privacy.selectors import call_access_reason
from routing import messages, roles, wrap_up
from routing.models import Call

REASON_PARAMETER = OpenApiParameter(
    "reason",
    str,
    description="Why you look this customer up outside your own call (typed; audited). "
    "Not needed while the customer's call is offered to you, connected with you or in your "
    "wrap-up.",
)


def _authorise_read(request: Request, customer_id: int) -> tuple[str, int | None, str]:
    """(audit reason, call id, typed reason) for this read, or 403."""
    user = request.user
    on_call = call_access_reason(user=user, customer_id=customer_id)
    if on_call is not None:
        reason, call_id = on_call
        return reason, call_id, ""
    typed = request.query_params.get("reason", "").strip()
    if typed and roles.is_team_member(user):
        return AccessReason.LOOKUP, None, typed
    if user.is_staff:
        return AccessReason.API, None, ""
    raise PermissionDenied(
        "This customer's call is not yours: looking them up needs a typed `reason`."
    )


def _authorise_write(request: Request, customer_id: int) -> tuple[str, int | None, str]:
    """A typed reason opens reading, never writing: only the agent whose call it is, or a
    supervisor or staff, changes a customer or leaves them a note."""
    reason, call_id, typed = _authorise_read(request, customer_id)
    if call_id is None and not roles.is_supervisor(request.user):
        raise PermissionDenied(
            "Only the agent on this customer's call, or a supervisor, may change them or leave "
            "a note: a typed `reason` opens reading only."
        )
    return reason, call_id, typed


def _read_customer(request: Request, customer_id: int, *, to_change: bool = False) -> Customer:
    """The customer, once the read (or, `to_change`, the write) is allowed and recorded in the
    access log."""
    authorise = _authorise_write if to_change else _authorise_read
    reason, call_id, typed = authorise(request, customer_id)
    customer = selectors.customers_with_recorders().filter(id=customer_id).first()
    if customer is None:
        raise NotFound("No such customer.")
    record_context_access(
        customer_ids=[customer.id],
        user=request.user,
        reason=reason,
        reason_text=typed,
        call_id=call_id,
    )
    return customer


def _record(customer: Customer) -> dict[str, Any]:
    last_agent = messages.last_agent_shown(customer, queue_id=None)
    return selectors.customer_record(customer, last_agent=last_agent)


def _invalid(error: DjangoValidationError) -> ValidationError:
    return ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages)


class CustomerWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    phones = serializers.ListField(
        child=serializers.CharField(max_length=64), allow_empty=True, max_length=20
    )
    email = serializers.EmailField(required=False, allow_blank=True)
    external_id = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=64
    )
    customer_since = serializers.DateField(required=False, allow_null=True)
    pace = serializers.ChoiceField(Pace.choices, required=False)
    hold_ok = serializers.BooleanField(required=False, allow_null=True)
    preferred_channel = serializers.ChoiceField(Channel.choices, required=False)
    consent = serializers.ChoiceField(Consent.choices, required=False)
    source = serializers.ChoiceField(
        [Provenance.SAID_BY_CALLER, Provenance.INFERRED_BY_AGENT],
        required=False,
        default=Provenance.SAID_BY_CALLER,
        help_text="Where the preferences and consent in this request came from.",
    )


class NoteContextSerializer(serializers.Serializer):
    occasion = serializers.CharField(required=False, allow_blank=True, max_length=200)
    intent = serializers.CharField(required=False, allow_blank=True, max_length=200)
    shopping_for = serializers.CharField(required=False, allow_blank=True, max_length=200)
    sizes = serializers.CharField(required=False, allow_blank=True, max_length=200)


class NoteWriteSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True, max_length=10_000)
    call_id = serializers.CharField(
        required=False, allow_null=True, max_length=128, help_text="The telephony call id."
    )
    context = NoteContextSerializer(required=False)
    open_matter = serializers.BooleanField(required=False, default=False)


class CustomerListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="customers_list",
        summary="Find customers (staff, or anyone with a typed reason; audited)",
        parameters=[
            REASON_PARAMETER,
            OpenApiParameter("phone", str, description="Any format; normalised to E.164."),
            OpenApiParameter("q", str, description="Part of the name, or an external id."),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        typed = request.query_params.get("reason", "").strip()
        if typed and roles.is_team_member(request.user):
            reason = AccessReason.LOOKUP
        elif request.user.is_staff:
            reason = AccessReason.API
        else:
            raise PermissionDenied("Looking customers up needs a typed `reason`.")
        raw_phone = request.query_params.get("phone")
        phone = normalise_phone_number(raw_phone) if raw_phone else None
        if raw_phone and phone is None:
            raise ValidationError({"phone": ["Not a phone number."]})
        found = selectors.customer_summaries(phone=phone, text=request.query_params.get("q"))
        record_context_access(
            customer_ids=[customer["id"] for customer in found],
            user=request.user,
            reason=reason,
            reason_text=typed,
        )
        return Response({"results": found})

    @extend_schema(
        summary="Create a customer",
        request=CustomerWriteSerializer,
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        if not roles.is_team_member(request.user):
            raise PermissionDenied("Only agents, supervisors and staff create customers.")
        serializer = CustomerWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            customer = services.create_customer(
                recorded_by=request.user, **serializer.validated_data
            )
        except DjangoValidationError as error:
            raise _invalid(error) from error
        customer = selectors.customers_with_recorders().get(id=customer.id)
        return Response(_record(customer), status=status.HTTP_201_CREATED)


class CustomerDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="A customer's context, as their consent allows (audited)",
        parameters=[REASON_PARAMETER],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, customer_id: int) -> Response:
        customer = _read_customer(request, customer_id)
        return Response(_record(customer))

    @extend_schema(
        summary="Change a customer; preferences and consent keep their provenance",
        parameters=[REASON_PARAMETER],
        request=CustomerWriteSerializer,
        responses=OpenApiTypes.OBJECT,
    )
    def patch(self, request: Request, customer_id: int) -> Response:
        customer = _read_customer(request, customer_id, to_change=True)
        serializer = CustomerWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        source = changes.pop("source", Provenance.SAID_BY_CALLER)
        try:
            services.update_customer(
                customer=customer, changed_by=request.user, source=source, **changes
            )
        except DjangoValidationError as error:
            raise _invalid(error) from error
        customer = selectors.customers_with_recorders().get(id=customer.id)
        return Response(_record(customer))

    @extend_schema(
        summary="Erase the customer's personal data (staff); call statistics stay",
        responses={204: None},
    )
    def delete(self, request: Request, customer_id: int) -> Response:
        if not request.user.is_staff:
            raise PermissionDenied("Only staff erase customers.")
        customer = Customer.objects.filter(id=customer_id, erased_at__isnull=True).first()
        if customer is None:
            raise NotFound("No such customer.")
        privacy_services.erase_customer(customer=customer, erased_by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerNotesView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="Notes, newest first, as consent allows (audited)",
        parameters=[
            REASON_PARAMETER,
            OpenApiParameter("before", int, description="Only notes older than this note id."),
            OpenApiParameter("limit", int, description="At most this many (1-50, default 20)."),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, customer_id: int) -> Response:
        before = _int_param(request, "before", default=None)
        limit = _int_param(request, "limit", default=20)
        customer = _read_customer(request, customer_id)
        return Response(selectors.more_notes(customer.id, before, limit))

    @extend_schema(
        summary="Leave a note for the next colleague (card numbers are masked)",
        parameters=[REASON_PARAMETER],
        request=NoteWriteSerializer,
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request, customer_id: int) -> Response:
        customer = _read_customer(request, customer_id, to_change=True)
        serializer = NoteWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        call_id = _call_of_note(data.get("call_id"), customer) if data.get("call_id") else None
        try:
            with transaction.atomic():
                note = services.add_note(
                    customer=customer,
                    author=request.user,
                    text=data["text"],
                    call_id=call_id,
                    open_matter=data["open_matter"],
                    **data.get("context", {}),
                )
                wrap_up.label_note(note)
        except DjangoValidationError as error:
            raise _invalid(error) from error
        note = type(note).objects.select_related("author__agent").get(id=note.id)
        return Response(selectors.note_data(note), status=status.HTTP_201_CREATED)


def _call_of_note(telephony_call_id: str, customer: Customer) -> int:
    """The call a note is written on: it must be this customer's (or have them as a candidate)."""
    call = Call.objects.filter(telephony_call_id=telephony_call_id).first()
    if call is None:
        raise ValidationError({"call_id": ["No such call."]})
    if call.customer_id not in (None, customer.id) and not (
        call.candidates.filter(id=customer.id).exists()
    ):
        raise ValidationError({"call_id": ["That call is not this customer's."]})
    return call.id


class CustomerMoreNotesView(CustomerNotesView):
    """ "N more" on the offer card: the notes older than `before`."""

    http_method_names = ["get", "options"]


def _int_param(request: Request, name: str, *, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationError({name: ["A whole number is required."]}) from None


class CustomerExportView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        summary="Everything held about the customer, with who has looked at them (staff)",
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, customer_id: int) -> Response:
        customer = Customer.objects.filter(id=customer_id).first()
        if customer is None:
            raise NotFound("No such customer.")
        document = privacy_services.export_customer(customer=customer, exported_by=request.user)
        response = Response(document)
        response["Content-Disposition"] = f'attachment; filename="customer-{customer.id}.json"'
        return response
