from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from console import services
from customers.selectors import caller_context
from routing.models import Agent


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
    agent = Agent.objects.filter(user=request.user).select_related("user").first()
    if agent is None:
        raise exceptions.PermissionDenied("Only agents can say who is calling.")
    choice = CallerChoiceSerializer(data=request.data)
    choice.is_valid(raise_exception=True)
    customer_id = choice.validated_data["customer_id"]
    try:
        call = services.set_call_customer(
            agent=agent, telephony_call_id=call_id, customer_id=customer_id
        )
    except services.CallNotFound as error:
        raise exceptions.NotFound("No such call.") from error
    except services.CallNotHeldByAgent as error:
        raise exceptions.PermissionDenied(
            "This call is not ringing for you or with you."
        ) from error
    except services.CustomerNotOnThisNumber as error:
        raise exceptions.ValidationError(
            {"customer_id": ["This customer does not share the caller's number."]}
        ) from error
    caller = caller_context(
        from_e164=call.from_e164,
        customer_ids=[customer_id],
        agent_id=agent.id,
        identity_verified=call.identity_verified,
    )
    return Response(
        {"call_id": call.telephony_call_id, "customer_id": customer_id, "caller": caller}
    )


urlpatterns = [
    path("calls/<str:call_id>/caller/", choose_caller, name="call-choose-caller"),
]
