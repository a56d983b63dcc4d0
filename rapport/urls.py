from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from rapport import health
from rapport.metrics import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema"),
        name="api-docs",
    ),
    path("api/health/", health.health, name="health"),
    path("api/health/live/", health.live, name="health-live"),
    path("api/health/ready/", health.ready, name="health-ready"),
    path("metrics", metrics, name="metrics"),
    path("api/telephony/", include("telephony.urls")),
    path("api/softphone/", include("telephony.sip.urls")),
    path("", include("supervisor.urls")),
    path("api/", include("privacy.urls")),
    path("api/", include("routing.urls")),
    path("api/", include("console.api")),
    path("", include("console.urls")),
]
