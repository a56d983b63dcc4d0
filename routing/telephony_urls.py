from django.urls import path

from routing import telephony_api

urlpatterns = [
    path("ping/", telephony_api.ping, name="telephony-ping"),
    path("events/", telephony_api.TelephonyEventsView.as_view(), name="telephony-events"),
    path(
        "calls/<str:call_id>/",
        telephony_api.TelephonyCallView.as_view(),
        name="telephony-call",
    ),
]
