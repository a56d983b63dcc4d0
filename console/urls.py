from django.urls import path

from console import consumers, views

urlpatterns = [
    path("", views.console, name="console"),
]

websocket_urlpatterns = [
    path("ws/agent/", consumers.AgentConsumer.as_asgi()),
]
