from django.urls import path

from routing import api

urlpatterns = [
    path("health/", api.health, name="health"),
    path("agents/", api.AgentList.as_view(), name="agents"),
    path("agents/<int:agent_id>/", api.AgentDetail.as_view(), name="agent"),
    path("agents/<int:agent_id>/ready/", api.agent_ready, name="agent-ready"),
    path("queues/", api.QueueList.as_view(), name="queues"),
    path("calls/<str:call_id>/", api.call_detail, name="call"),
    path("offers/<int:offer_id>/accept/", api.accept_offer, name="offer-accept"),
    path("offers/<int:offer_id>/decline/", api.decline_offer, name="offer-decline"),
]
