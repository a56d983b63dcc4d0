"""The supervisor dashboard's JSON figures and the supervisor's actions. A refused action is
answered by the API's error handler with the status it carries (infrastructure.api_errors)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from routing import roles, status_choices
from routing.models import Queue
from routing.states import SELF_SERVICE_STATUSES
from supervisor import callbacks, reunion, services, wall

BIGGEST_ID = 2**63 - 1


class IsSupervisor(permissions.BasePermission):
    message = "Only supervisors can see or change this."

    def has_permission(self, request, view) -> bool:
        return roles.is_supervisor(request.user)


@extend_schema(
    summary="A queue's live figures and today's service level, reunion rate and series",
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@permission_classes([IsSupervisor])
def queue_stats(request: Request, slug: str) -> Response:
    queue = get_object_or_404(Queue, slug=slug)
    return Response(wall.queue_stats(queue))


@extend_schema(
    summary="Everything the supervisor dashboard shows: queues, agents, totals, day series",
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@permission_classes([IsSupervisor])
def dashboard_figures(request: Request) -> Response:
    return Response(wall.figures())


class AgentStatusChangeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=sorted(SELF_SERVICE_STATUSES))
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    not_ready_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        default="",
        help_text="With status break: one of settings.NOT_READY_REASONS (lunch, coaching, ...).",
    )


class AgentStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    status_changed_at = serializers.DateTimeField()
    not_ready_reason = serializers.CharField()


@extend_schema(
    summary="Set an agent's status on their behalf (audited with who and why)",
    request=AgentStatusChangeSerializer,
    responses=AgentStatusSerializer,
)
@api_view(["POST"])
@permission_classes([IsSupervisor])
def set_agent_status(request: Request, agent_id: int) -> Response:
    body = AgentStatusChangeSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    if agent_id > BIGGEST_ID:
        return Response({"detail": "No such agent."}, status=status.HTTP_404_NOT_FOUND)
    agent = status_choices.change_status(
        agent_id=agent_id,
        status=body.validated_data["status"],
        changed_by=request.user,
        reason=body.validated_data["reason"],
        not_ready_reason=body.validated_data["not_ready_reason"],
    )
    return Response(AgentStatusSerializer(agent).data)


class MoveCallSerializer(serializers.Serializer):
    queue = serializers.SlugField(help_text="Slug of the queue to move the caller to.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class MovedCallSerializer(serializers.Serializer):
    call_id = serializers.CharField(source="telephony_call_id")
    state = serializers.CharField()
    queue = serializers.CharField(source="queue.slug")


@extend_schema(
    summary="Move a waiting caller to another queue (audited as a routing decision)",
    request=MoveCallSerializer,
    responses=MovedCallSerializer,
)
@api_view(["POST"])
@permission_classes([IsSupervisor])
def move_call(request: Request, call_id: str) -> Response:
    body = MoveCallSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    call = services.move_waiting_call(
        telephony_call_id=call_id,
        queue_slug=body.validated_data["queue"],
        moved_by=request.user,
        reason=body.validated_data["reason"],
    )
    return Response(MovedCallSerializer(call).data)


class EndCallSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=200,
        help_text="Why the call is ended (the phone system's hang-up never came): audited.",
    )


class EndedCallSerializer(serializers.Serializer):
    call_id = serializers.CharField(source="telephony_call_id")
    state = serializers.CharField(help_text="ended, or abandoned when nobody was connected.")
    end_reason = serializers.CharField(help_text="lost")
    ended_at = serializers.DateTimeField()
    agent = serializers.IntegerField(source="agent_id", allow_null=True)


@extend_schema(
    summary="End a live call the phone system forgot, freeing its agent (audited with who and"
    " why): ended as lost, the agent in wrap-up (available if never connected)",
    request=EndCallSerializer,
    responses=EndedCallSerializer,
)
@api_view(["POST"])
@permission_classes([IsSupervisor])
def end_call(request: Request, call_id: str) -> Response:
    body = EndCallSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    call = services.end_forgotten_call(
        telephony_call_id=call_id, ended_by=request.user, reason=body.validated_data["reason"]
    )
    return Response(EndedCallSerializer(call).data)


@extend_schema(
    summary="The last days' reunion table: per queue and per last agent, returning callers who"
    " were waited for, sent to the queue, or found their agent unavailable, and who got through",
    parameters=[OpenApiParameter("days", int, description="1 to 31; 7 unless given")],
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@permission_classes([IsSupervisor])
def reunion_table(request: Request) -> Response:
    days = ReunionDaysSerializer(data=request.query_params)
    days.is_valid(raise_exception=True)
    return Response(reunion.reunion_table(days=days.validated_data["days"]))


class ReunionDaysSerializer(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=1, max_value=31, required=False, default=reunion.REUNION_TABLE_DAYS
    )


@extend_schema(
    summary="Today's abandoned callers, named as consent allows, with their number to call back"
    " (each one shown is recorded in the access log, reason supervisor)",
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@permission_classes([IsSupervisor])
def abandoned_callers(request: Request) -> Response:
    abandoned = services.abandoned_callers_seen(user=request.user)
    return Response({"abandoned": abandoned})


@extend_schema(
    summary="Call backs waiting or not reached, oldest place first: queue, customer (as consent"
    " allows), number, since when, their last agent, tries, state, the message they left (each"
    " customer shown is recorded in the access log, reason supervisor)",
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@permission_classes([IsSupervisor])
def callbacks_list(request: Request) -> Response:
    return Response({"callbacks": callbacks.callbacks_seen(user=request.user)})


class CalledBackSerializer(serializers.Serializer):
    call_id = serializers.CharField()
    called_back_by = serializers.CharField(source="username")
    called_back_at = serializers.DateTimeField()


@extend_schema(
    summary="Mark an abandoned caller as called back (recorded with who and when, once)",
    request=None,
    responses={201: CalledBackSerializer},
)
@api_view(["POST"])
@permission_classes([IsSupervisor])
def mark_called_back(request: Request, call_id: str) -> Response:
    call_back = services.mark_called_back(telephony_call_id=call_id, user=request.user)
    return Response(
        {
            "call_id": call_id,
            "called_back_by": call_back.username,
            "called_back_at": call_back.called_back_at.isoformat(),
        },
        status=status.HTTP_201_CREATED,
    )
