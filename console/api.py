"""REST for what an agent does from the console: the same actions the agent socket offers (for
scripts), and saying who is on a shared line."""

from django.http import StreamingHttpResponse
from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from console import services
from routing import agent_dialled, messages, offers, selectors, voicemails
from telephony.twilio import recordings as twilio_recordings


def _own_agent_id(request: Request) -> int:
    agent_id = selectors.agent_id_for_user(request.user)
    if agent_id is None:
        raise exceptions.PermissionDenied("Only agents do this.")
    return agent_id


OfferOutcome = inline_serializer(
    "OfferOutcome",
    {
        "offer_id": serializers.IntegerField(),
        "call_id": serializers.CharField(),
        "state": serializers.CharField(),
    },
)


def _offer_outcome(offer) -> Response:
    return Response(
        {"offer_id": offer.id, "call_id": offer.call.telephony_call_id, "state": offer.state}
    )


@extend_schema(summary="Accept the offer ringing for me", request=None, responses=OfferOutcome)
@api_view(["POST"])
def accept_offer(request: Request, offer_id: int) -> Response:
    offer = services.accept_offer(offer_id=offer_id, agent_id=_own_agent_id(request))
    return _offer_outcome(offer)


@extend_schema(summary="Decline the offer ringing for me", request=None, responses=OfferOutcome)
@api_view(["POST"])
def decline_offer(request: Request, offer_id: int) -> Response:
    offer = offers.decline_offer(offer_id=offer_id, agent_id=_own_agent_id(request))
    return _offer_outcome(offer)


class CallerChoiceSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField(min_value=1)


@extend_schema(
    summary="Say who is on the line (shared number)",
    description=(
        "The agent offered or connected to the call picks one of the customers who share the "
        "caller's number. Sets the call's customer and returns the caller context to show."
    ),
    request=CallerChoiceSerializer,
    responses=inline_serializer(
        "CallerChosen",
        {
            "call_id": serializers.CharField(),
            "customer_id": serializers.IntegerField(),
            "caller": serializers.DictField(),
        },
    ),
)
@api_view(["POST"])
def choose_caller(request: Request, call_id: str) -> Response:
    agent = selectors.agent_for_user(request.user)
    if agent is None:
        raise exceptions.PermissionDenied("Only agents can say who is calling.")
    choice = CallerChoiceSerializer(data=request.data)
    choice.is_valid(raise_exception=True)
    customer_id = choice.validated_data["customer_id"]
    call = services.set_call_customer(
        agent=agent, telephony_call_id=call_id, customer_id=customer_id
    )
    caller = messages.caller_for_call(call, customer_ids=[customer_id])
    return Response(
        {"call_id": call.telephony_call_id, "customer_id": customer_id, "caller": caller}
    )


class CallBackOutcomeSerializer(serializers.Serializer):
    reached = serializers.BooleanField()


@extend_schema(
    summary="Say how a call back I dialled myself went",
    description=(
        "For a call back no phone system places (its card shows the number to dial): the agent"
        " who accepted it says whether they reached the customer. Not reached: it is tried"
        " again later, up to the queue's tries."
    ),
    request=CallBackOutcomeSerializer,
    responses=inline_serializer(
        "CallBackDialled",
        {"callback_id": serializers.IntegerField(), "call_id": serializers.CharField()},
    ),
)
@api_view(["POST"])
def called_back(request: Request, callback_id: int) -> Response:
    agent_id = _own_agent_id(request)
    answer = CallBackOutcomeSerializer(data=request.data)
    answer.is_valid(raise_exception=True)
    try:
        call = agent_dialled.agent_called_back(
            agent_id=agent_id, callback_id=callback_id, reached=answer.validated_data["reached"]
        )
    except agent_dialled.NotTheirCallBack as not_theirs:
        raise exceptions.NotFound("No call back of yours to dial with this id.") from not_theirs
    return Response({"callback_id": callback_id, "call_id": call.telephony_call_id})


@extend_schema(
    summary="What I can do with my call: transfer, hang up, hold",
    description=(
        "For the agent connected to the call: how its phone system is told of a transfer"
        " (`twilio`, `push`, or `phone`: transfer on your phone, the note is sent ahead),"
        " whether hang-up and hold are offered, and the colleagues it could be handed to (the"
        " free ones first). The transfer itself is the socket's `transfer` message."
    ),
    responses=inline_serializer(
        "TransferOptions",
        {
            "call_id": serializers.CharField(),
            "controls": serializers.DictField(),
            "colleagues": serializers.ListField(child=serializers.DictField()),
        },
    ),
)
@api_view(["GET"])
def call_controls(request: Request, call_id: str) -> Response:
    agent = selectors.agent_for_user(request.user)
    if agent is None:
        raise exceptions.PermissionDenied("Only agents do this.")
    return Response(services.transfer_options(agent=agent, telephony_call_id=call_id))


@extend_schema(
    summary="Hear a message a caller left",
    description=(
        "The audio of a caller's message (WAV), fetched from the phone system by Rapport, which"
        " holds the credentials. For the agent while the call back it belongs to rings for them"
        " or is their call, and for supervisors; 404 for anyone else. Every listen is written"
        " to the access log."
    ),
    responses={(200, "audio/x-wav"): bytes},
)
@api_view(["GET"])
def voicemail_audio(request: Request, voicemail_id: int) -> StreamingHttpResponse:
    try:
        voicemail = voicemails.voicemail_to_hear(voicemail_id=voicemail_id, user=request.user)
    except voicemails.NotTheirs as not_theirs:
        raise exceptions.NotFound("No message of yours to hear with this id.") from not_theirs
    try:
        chunks, content_type = twilio_recordings.audio_chunks(voicemail)
    except twilio_recordings.AudioUnavailable as unavailable:
        raise ServiceUnavailable(f"No audio from the phone system: {unavailable}") from unavailable
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    return response


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The phone system cannot be reached just now."


urlpatterns = [
    path("voicemails/<int:voicemail_id>/audio/", voicemail_audio, name="voicemail-audio"),
    path("callbacks/<int:callback_id>/called-back/", called_back, name="callback-called-back"),
    path("offers/<int:offer_id>/accept/", accept_offer, name="offer-accept"),
    path("offers/<int:offer_id>/decline/", decline_offer, name="offer-decline"),
    path("calls/<str:call_id>/caller/", choose_caller, name="call-choose-caller"),
    path("calls/<str:call_id>/controls/", call_controls, name="call-controls"),
]
