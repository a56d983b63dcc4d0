from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from console import supervisor_views
from rapport.content_security_policy import allow_api_docs_assets

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        allow_api_docs_assets(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="api-docs",
    ),
    path("api/telephony/", include("routing.telephony_urls")),
    path("supervisor/", supervisor_views.dashboard, name="supervisor"),
    path("api/queues/<slug:slug>/stats/", supervisor_views.queue_stats, name="queue-stats"),
    path("api/supervisor/", supervisor_views.dashboard_figures, name="supervisor-figures"),
    path("api/supervisor/agents/<int:agent_id>/status/", supervisor_views.set_agent_status),
    path("api/supervisor/calls/<str:call_id>/move/", supervisor_views.move_call),
    path("api/", include("customers.urls")),
    path("api/", include("routing.urls")),
    path("api/", include("console.api")),
    path("", include("console.urls")),
]
