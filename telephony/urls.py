"""Each way a telephony system talks to Rapport is a folder of its own: the own signed event
format, Twilio, Generic CTI and the route hint."""

from django.urls import include, path

urlpatterns = [
    path("", include("telephony.signed_events.urls")),
    path("twilio/", include("telephony.twilio.urls")),
    path("cti/", include("telephony.generic_cti.urls")),
    path("route-hint/", include("telephony.route_hint.urls")),
]
