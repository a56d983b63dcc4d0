from django.urls import path

from telephony.signed_events import api

urlpatterns = [
    path("events/", api.TelephonyEventsView.as_view(), name="telephony-events"),
    path("calls/<str:call_id>/", api.TelephonyCallView.as_view(), name="telephony-call"),
]
