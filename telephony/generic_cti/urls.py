from django.urls import path

from telephony.generic_cti import api

urlpatterns = [
    path("<str:token>/", api.GenericCtiView.as_view(), name="telephony-cti"),
]
