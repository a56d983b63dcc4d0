from django.urls import path

from routing import api

urlpatterns = [
    path("health/", api.health, name="health"),
]
