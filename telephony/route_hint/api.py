"""`GET /api/telephony/route-hint/`: the route hint a PBX's dialplan asks (docs/telephony.md,
"Route hint for any dialplan")."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from telephony.authentication import authorise_pull
from telephony.openapi import ERROR_DETAIL, FIELD_ERRORS, SIGNATURE_PARAMETERS
from telephony.queues import choose_queue, queue_is_named
from telephony.route_hint.hint import route_hint


class RouteHintSerializer(serializers.Serializer):
    agent = serializers.CharField(
        allow_null=True, help_text="Telephony identity of the agent to ring first; null: nobody."
    )
    status = serializers.CharField(allow_null=True, help_text="That agent's status now.")
    wait_seconds = serializers.IntegerField(
        help_text="How long to ring (or hold the caller for) that agent before the ring group."
    )
    reason = serializers.CharField(help_text="Why, in the router's words.")
    then = serializers.ListField(
        child=serializers.CharField(),
        help_text=(
            "Then: the telephony identities of the queue's agents who could take the call now, "
            "in the router's order (its queue step: longest idle first); `agent` is not among "
            "them. Additive to the contract."
        ),
    )
    ring_seconds = serializers.IntegerField(
        help_text="How long to ring each of `then` (the queue's offer timeout)."
    )
    queue = serializers.CharField(
        allow_null=True,
        help_text=(
            "The slug of the queue `queue` named (by slug or number); null when it named none "
            "and the default queue answered: a PBX may refuse such a call from an unknown caller."
        ),
    )


class RouteHintView(APIView):
    """`GET /api/telephony/route-hint/?from=&queue=`: whom a PBX that routes itself should ring
    first, and for how long. Names no customer."""

    authentication_classes = [TokenAuthentication]
    permission_classes: list = []
    renderer_classes = [JSONRenderer]
    metadata_class = None

    @extend_schema(
        operation_id="telephony_route_hint",
        summary="Whom to ring first for a caller, and for how long (sticky routing on a PBX)",
        description=(
            "Authenticated like the pull: `Authorization: Token <key>` of a user allowed to "
            "view calls, or signed with `GET {path}` in the body's place."
        ),
        parameters=[
            *SIGNATURE_PARAMETERS,
            OpenApiParameter("from", OpenApiTypes.STR, required=True, description="Caller."),
            OpenApiParameter(
                "queue",
                OpenApiTypes.STR,
                required=False,
                description="Queue slug or the dialled number; else the default queue.",
            ),
        ],
        responses={200: RouteHintSerializer, 400: FIELD_ERRORS, 401: ERROR_DETAIL},
    )
    def get(self, request: Request) -> Response:
        authorise_pull(request)
        caller = request.query_params.get("from", "")
        if caller.startswith(" ") and caller.strip():
            # A dialplan that did not encode the query sends E.164's "+" as a space.
            caller = "+" + caller.lstrip()
        caller = caller.strip()
        wanted = request.query_params.get("queue", "").strip()
        errors = {}
        if not caller or len(caller) > 64 or "\x00" in caller:
            errors["from"] = ["Give the caller's number (at most 64 characters)."]
        if len(wanted) > 64 or "\x00" in wanted:
            errors["queue"] = ["At most 64 characters."]
        if errors:
            raise exceptions.ValidationError(errors)
        queue = choose_queue(queue_slug=wanted[:50], to_number=wanted)
        hint = route_hint(from_number=caller, queue=queue, now=timezone.now())
        named = queue_is_named(queue, queue_slug=wanted[:50], to_number=wanted)
        return Response({**hint, "queue": queue.slug if named else None})

    def get_authenticate_header(self, request: Request) -> str:
        return 'Signature realm="telephony", Token'
