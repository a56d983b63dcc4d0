from django.urls import path

from telephony.sip import api

urlpatterns = [
    path("", api.softphone, name="softphone"),
]
