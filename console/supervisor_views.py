"""The supervisor dashboard page, its JSON figures, and the supervisor's two actions."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from routing import stats_selectors, supervisor_services
from routing.models import Queue
from routing.services import SELF_SERVICE_STATUSES, RoutingRefused

BIGGEST_ID = 2**63 - 1


class IsSupervisor(permissions.BasePermission):
    message = "Only supervisors can see or change this."

    def has_permission(self, request, view) -> bool:
        return stats_selectors.user_can_supervise(request.user)


@login_required
@ensure_csrf_cookie
def dashboard(request: HttpRequest) -> HttpResponse:
    if not stats_selectors.user_can_supervise(request.user):
        raise PermissionDenied("The dashboard is for supervisors.")
    figures = {"type": "snapshot", **stats_selectors.dashboard(timezone.now())}
    return render(request, "supervisor/dashboard.html", {"figures": figures})


REFUSAL_STATUS = {
    "not_found": status.HTTP_404_NOT_FOUND,
    "invalid": status.HTTP_400_BAD_REQUEST,
    "conflict": status.HTTP_409_CONFLICT,
}


def _refused(error: RoutingRefused) -> Response:
    if error.kind == "not_found":
        return Response({"detail": error.message}, status=status.HTTP_404_NOT_FOUND)
    return Response(
        {"detail": error.message, "errors": {error.field or "non_field_errors": [error.message]}},
        status=REFUSAL_STATUS[error.kind],
    )


@extend_schema(
    summary="A queue's live figures and today's service level, reunion rate and series",
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@permission_classes([IsSupervisor])
def queue_stats(request: Request, slug: str) -> Response:
    queue = get_object_or_404(Queue, slug=slug)
    return Response(stats_selectors.queue_stats(queue))


@extend_schema(
    summary="Everything the supervisor dashboard shows: queues, agents, totals, day series",
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@permission_classes([IsSupervisor])
def dashboard_figures(request: Request) -> Response:
    return Response(stats_selectors.dashboard())


class AgentStatusChangeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=sorted(SELF_SERVICE_STATUSES))
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class AgentStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    status_changed_at = serializers.DateTimeField()


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
    try:
        agent = supervisor_services.set_agent_status(
            agent_id=agent_id,
            status=body.validated_data["status"],
            changed_by=request.user,
            reason=body.validated_data["reason"],
        )
    except RoutingRefused as error:
        return _refused(error)
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
    try:
        call = supervisor_services.move_waiting_call(
            telephony_call_id=call_id,
            queue_slug=body.validated_data["queue"],
            moved_by=request.user,
            reason=body.validated_data["reason"],
        )
    except RoutingRefused as error:
        return _refused(error)
    return Response(MovedCallSerializer(call).data)
