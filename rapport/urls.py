from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from rapport.health import health

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
    path("api/health/", health, name="health"),
    path("api/telephony/", include("telephony.urls")),
    path("", include("supervisor.urls")),
    path("api/", include("privacy.urls")),
    path("api/", include("routing.urls")),
    path("api/", include("console.api")),
    path("", include("console.urls")),
]
