from django.urls import path

from routing import api

urlpatterns = [
    path("agents/", api.AgentList.as_view(), name="agents"),
    path("agents/<int:agent_id>/", api.AgentDetail.as_view(), name="agent"),
    path("agents/<int:agent_id>/ready/", api.agent_ready, name="agent-ready"),
    path("queues/", api.QueueList.as_view(), name="queues"),
    path("calls/<str:call_id>/", api.call_detail, name="call"),
]
