from django.urls import path

from telephony import api

urlpatterns = [
    path("ping/", api.ping, name="telephony-ping"),
    path("events/", api.TelephonyEventsView.as_view(), name="telephony-events"),
    path(
        "calls/<str:call_id>/",
        api.TelephonyCallView.as_view(),
        name="telephony-call",
    ),
]
