from django.urls import path

from telephony import api, generic_cti_api

urlpatterns = [
    path("ping/", api.ping, name="telephony-ping"),
    path("events/", api.TelephonyEventsView.as_view(), name="telephony-events"),
    path(
        "calls/<str:call_id>/",
        api.TelephonyCallView.as_view(),
        name="telephony-call",
    ),
    path("cti/<str:token>/", generic_cti_api.GenericCtiView.as_view(), name="telephony-cti"),
    path("route-hint/", generic_cti_api.RouteHintView.as_view(), name="telephony-route-hint"),
]
