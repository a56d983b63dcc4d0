from django.urls import path

from telephony.route_hint import api

urlpatterns = [
    path("", api.RouteHintView.as_view(), name="telephony-route-hint"),
]
