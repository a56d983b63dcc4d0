from django.urls import path

from supervisor import api, consumers, views

urlpatterns = [
    path("supervisor/", views.dashboard, name="supervisor"),
    path("api/queues/<slug:slug>/stats/", api.queue_stats, name="queue-stats"),
    path("api/supervisor/", api.dashboard_figures, name="supervisor-figures"),
    path("api/supervisor/agents/<int:agent_id>/status/", api.set_agent_status),
    path("api/supervisor/calls/<str:call_id>/move/", api.move_call),
    path("api/supervisor/calls/<str:call_id>/called-back/", api.mark_called_back),
    path("api/supervisor/calls/<str:call_id>/end/", api.end_call),
    path("api/supervisor/abandoned/", api.abandoned_callers),
    path("api/supervisor/reunion/", api.reunion_table),
    path("api/callbacks/", api.callbacks_list, name="callbacks"),
]

websocket_urlpatterns = [
    path("ws/supervisor/", consumers.SupervisorConsumer.as_asgi()),
]
