from django.urls import path

from telephony import api, generic_cti_api, twilio_api

urlpatterns = [
    path("events/", api.TelephonyEventsView.as_view(), name="telephony-events"),
    path(
        "calls/<str:call_id>/",
        api.TelephonyCallView.as_view(),
        name="telephony-call",
    ),
    path("twilio/voice/", twilio_api.voice, name="twilio-voice"),
    path("twilio/status/", twilio_api.status, name="twilio-status"),
    path("twilio/wait/", twilio_api.wait, name="twilio-wait"),
    path("twilio/enqueue-action/", twilio_api.enqueue_action, name="twilio-enqueue-action"),
    path("twilio/dial-action/", twilio_api.dial_action, name="twilio-dial-action"),
    path("twilio/agent-status/", twilio_api.agent_status, name="twilio-agent-status"),
    path("cti/<str:token>/", generic_cti_api.GenericCtiView.as_view(), name="telephony-cti"),
    path("route-hint/", generic_cti_api.RouteHintView.as_view(), name="telephony-route-hint"),
]
