from django.urls import path

from console import consumers, supervisor

websocket_urlpatterns = [
    path("ws/agent/", consumers.AgentConsumer.as_asgi()),
    path("ws/supervisor/", supervisor.SupervisorConsumer.as_asgi()),
]
