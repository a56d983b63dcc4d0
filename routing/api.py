"""REST for routing: agents and their status, queues, a call's routing story.

A refused action (`infrastructure.errors.Refused`) is answered by the API's error handler with
the status it carries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.audit import record_context_access
from customers.models import AccessReason
from customers.phone_numbers import normalise_phone_number
from routing import agent_status, messages, policy, roles, selectors, status_choices, wrap_up
from routing.models import Agent, Call, Queue, WrapUpCode
from routing.states import AgentStatus, status_label


def _require_supervisor(request: Request) -> None:
    if not roles.is_supervisor(request.user):
        raise PermissionDenied("Only supervisors and staff do this.")


# --- agents --------------------------------------------------------------------------------


class AgentSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", max_length=150)
    queues = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Queue.objects.all(), required=False
    )

    class Meta:
        model = Agent
        fields = [
            "id",
            "username",
            "display_name",
            "telephony_identity",
            "queues",
            "status",
            "status_changed_at",
            "not_ready_reason",
            "status_label",
        ]
        read_only_fields = ["id", "status", "status_changed_at", "not_ready_reason"]

    status_label = serializers.SerializerMethodField()

    def get_status_label(self, agent: Agent) -> str:
        return status_label(agent.status, agent.not_ready_reason)

    def validate_username(self, username: str) -> str:
        if User.objects.filter(username=username).exists():
            raise serializers.ValidationError("A user with that username already exists.")
        return username


class AgentStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AgentStatus.choices)
    reason = serializers.CharField(max_length=80, required=False, allow_blank=True)
    not_ready_reason = serializers.CharField(
        max_length=32,
        required=False,
        allow_blank=True,
        help_text="With status break: one of settings.NOT_READY_REASONS (lunch, coaching, ...).",
    )


class AgentList(APIView):
    @extend_schema(summary="Agents and their status", responses=AgentSerializer(many=True))
    def get(self, request: Request) -> Response:
        agents = Agent.objects.select_related("user").prefetch_related("queues")
        return Response(AgentSerializer(agents, many=True).data)

    @extend_schema(
        summary="Create an agent (a login without password; an admin sets it)",
        request=AgentSerializer,
        responses={201: AgentSerializer},
    )
    def post(self, request: Request) -> Response:
        _require_supervisor(request)
        serializer = AgentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            user = User.objects.create_user(username=data["user"]["username"])
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(Group.objects.get_or_create(name="agent")[0])
            agent = Agent.objects.create(
                user=user,
                display_name=data["display_name"],
                telephony_identity=data["telephony_identity"],
            )
            agent.queues.set(data.get("queues", []))
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)


class AgentDetail(APIView):
    @extend_schema(summary="One agent", responses=AgentSerializer)
    def get(self, request: Request, agent_id: int) -> Response:
        agent = get_object_or_404(Agent.objects.select_related("user"), id=agent_id)
        return Response(AgentSerializer(agent).data)

    @extend_schema(
        summary="Set an agent's status (available, break, offline; busy and wrap_up follow calls)",
        request=AgentStatusSerializer,
        responses=AgentSerializer,
    )
    def patch(self, request: Request, agent_id: int) -> Response:
        agent = get_object_or_404(Agent, id=agent_id)
        own = agent.user_id == request.user.id
        if not own:
            _require_supervisor(request)
        serializer = AgentStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        status_choices.change_status(
            agent_id=agent.id,
            status=serializer.validated_data["status"],
            changed_by=request.user,
            reason=serializer.validated_data.get("reason", ""),
            not_ready_reason=serializer.validated_data.get("not_ready_reason", ""),
        )
        agent.refresh_from_db()
        return Response(AgentSerializer(agent).data)


@extend_schema(
    summary="End my wrap-up: back to available",
    request=None,
    responses=AgentSerializer,
)
@api_view(["POST"])
def agent_ready(request: Request, agent_id: int) -> Response:
    agent = get_object_or_404(Agent, id=agent_id)
    if agent.user_id != request.user.id:
        _require_supervisor(request)
    agent = agent_status.ready(agent_id=agent.id, changed_by=request.user)
    return Response(AgentSerializer(agent).data)


# --- queues --------------------------------------------------------------------------------


class WrapUpCodeSerializer(serializers.ModelSerializer):
    class Meta:
        model = WrapUpCode
        fields = ["id", "key", "label", "promises_call_back"]


class QueueSerializer(serializers.ModelSerializer):
    numbers = serializers.ListField(child=serializers.CharField(max_length=32), required=False)
    wrap_up_codes = serializers.SerializerMethodField(
        help_text="The active codes an agent chooses from at wrap-up (edited in the admin)."
    )

    @extend_schema_field(WrapUpCodeSerializer(many=True))
    def get_wrap_up_codes(self, queue: Queue) -> list[dict[str, Any]]:
        return WrapUpCodeSerializer(
            [code for code in queue.wrap_up_codes.all() if code.active], many=True
        ).data

    class Meta:
        model = Queue
        fields = [
            "id",
            "slug",
            "name",
            "numbers",
            "last_agent_wait_seconds",
            "hold_averse_wait_seconds",
            "offer_timeout_seconds",
            "wrap_up_seconds",
            "last_agent_lookback_days",
            "service_level_seconds",
            "wrap_up_code_required",
            "wrap_up_codes",
        ]
        read_only_fields = ["id"]
        extra_kwargs = {
            "offer_timeout_seconds": {"min_value": 1, "max_value": 600},
            "last_agent_wait_seconds": {"max_value": 3600},
            "hold_averse_wait_seconds": {"max_value": 3600},
            "wrap_up_seconds": {"min_value": 0, "max_value": 86400},
            "last_agent_lookback_days": {"min_value": 1, "max_value": 3650},
        }

    def validate_numbers(self, numbers: list[str]) -> list[str]:
        normalised = []
        for number in numbers:
            e164 = normalise_phone_number(number)
            if not e164:
                raise serializers.ValidationError(f"{number!r} is not a phone number.")
            normalised.append(e164)
        return normalised


class QueueList(APIView):
    @extend_schema(summary="Queues and their routing policy", responses=QueueSerializer(many=True))
    def get(self, request: Request) -> Response:
        queues = Queue.objects.prefetch_related("wrap_up_codes")
        return Response(QueueSerializer(queues, many=True).data)

    @extend_schema(
        summary="Create a queue", request=QueueSerializer, responses={201: QueueSerializer}
    )
    def post(self, request: Request) -> Response:
        _require_supervisor(request)
        serializer = QueueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            queue = serializer.save()
            wrap_up.give_default_codes(queue)
        return Response(QueueSerializer(queue).data, status=status.HTTP_201_CREATED)


# --- calls ---------------------------------------------------------------------------------

CallDetailResponse = inline_serializer(
    "CallRouting",
    {
        "call_id": serializers.CharField(),
        "state": serializers.CharField(),
        "from": serializers.CharField(),
        "queue": serializers.CharField(allow_null=True),
        "customer_id": serializers.IntegerField(allow_null=True),
        "agent": serializers.DictField(allow_null=True),
        "last_agent": serializers.DictField(allow_null=True),
        "last_agent_wait_until": serializers.DateTimeField(allow_null=True),
        "queued_at": serializers.DateTimeField(allow_null=True),
        "connected_at": serializers.DateTimeField(allow_null=True),
        "ended_at": serializers.DateTimeField(allow_null=True),
        "wrap_up_code": serializers.DictField(allow_null=True),
        "current_offer": serializers.DictField(allow_null=True),
        "decisions": serializers.ListField(child=serializers.DictField()),
    },
)


class WrapUpCodeChoiceSerializer(serializers.Serializer):
    wrap_up_code = serializers.IntegerField(
        help_text="The id of one of the call's queue's active codes (GET /api/queues/)."
    )


@extend_schema(
    methods=["GET"],
    summary="A call, its ringing offer and every routing decision with its reason",
    responses=CallDetailResponse,
)
@extend_schema(
    methods=["PATCH"],
    summary="Choose the call's wrap-up code (the agent on the call or wrapping it up)",
    request=WrapUpCodeChoiceSerializer,
    responses=CallDetailResponse,
)
@api_view(["GET", "PATCH"])
def call_detail(request: Request, call_id: str) -> Response:
    if request.method == "PATCH":
        return _choose_wrap_up_code(request, call_id)
    call = get_object_or_404(
        Call.objects.select_related("queue", "agent", "last_agent"), telephony_call_id=call_id
    )
    reason = _why_shown(request.user, call)
    if reason is None:
        raise PermissionDenied(
            "Only supervisors, staff and the agent the call is ringing for or connected with."
        )
    # The caller's number and customer are shown: the read is in the access log like any other.
    record_context_access(
        customer_ids=messages.customer_ids_on_card(call),
        user=request.user,
        reason=reason,
        call_id=call.id,
    )
    return Response(_routing_story(call))


def _choose_wrap_up_code(request: Request, call_id: str) -> Response:
    agent_id = selectors.agent_id_for_user(request.user)
    if agent_id is None:
        raise PermissionDenied("Only the agent on this call, or wrapping it up, codes it.")
    choice = WrapUpCodeChoiceSerializer(data=request.data)
    choice.is_valid(raise_exception=True)
    call = wrap_up.choose_code(
        agent_id=agent_id,
        telephony_call_id=call_id,
        code_id=choice.validated_data["wrap_up_code"],
    )
    call = Call.objects.select_related("queue", "agent", "last_agent").get(id=call.id)
    record_context_access(
        customer_ids=messages.customer_ids_on_card(call),
        user=request.user,
        reason=AccessReason.CALL,
        call_id=call.id,
    )
    return Response(_routing_story(call))


def _why_shown(user, call: Call) -> str | None:
    """The access-log reason this person may see the call now, or None: a supervisor, or the
    agent the call rings for or is with (`policy.why_agent_sees_call`)."""
    if roles.is_supervisor(user):
        return AccessReason.SUPERVISOR
    agent = selectors.agent_for_user(user, fields=policy.AGENT_FIELDS_SEEING_CALLS)
    if agent is None:
        return None
    seen = policy.why_agent_sees_call(agent=agent, among=Q(id=call.id))
    return seen[0] if seen is not None else None


def _routing_story(call: Call) -> dict[str, Any]:
    """The call, its ringing offer and every routing decision."""
    offer = selectors.open_offers().filter(call=call).select_related("agent").first()
    decisions = call.decisions.select_related("agent")
    return {
        "call_id": call.telephony_call_id,
        "state": call.state,
        "from": call.from_e164 or call.from_number,
        "queue": call.queue.slug if call.queue else None,
        "customer_id": call.customer_id,
        "agent": _agent_ref(call.agent),
        "last_agent": _agent_ref(call.last_agent),
        "last_agent_wait_until": _iso(call.last_agent_wait_until),
        "queued_at": _iso(call.queued_at),
        "connected_at": _iso(call.connected_at),
        "ended_at": _iso(call.ended_at),
        "wrap_up_code": (
            {"id": call.wrap_up_code_id, "label": call.wrap_up_label}
            if call.wrap_up_label
            else None
        ),
        "current_offer": None
        if offer is None
        else {
            "id": offer.id,
            "agent": _agent_ref(offer.agent),
            "offered_at": _iso(offer.offered_at),
            "expires_at": _iso(offer.expires_at),
        },
        "decisions": [
            {
                "id": decision.id,
                "reason": decision.reason,
                "agent": _agent_ref(decision.agent),
                "offer_id": decision.offer_id,
                "decided_at": _iso(decision.decided_at),
                "caller_waited_ms": decision.caller_waited_ms,
                "took_ms": decision.took_ms,
                "detail": decision.detail,
            }
            for decision in decisions
        ],
    }


def _agent_ref(agent: Agent | None) -> dict[str, Any] | None:
    return None if agent is None else {"id": agent.id, "display_name": agent.display_name}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
