from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.apis import api_not_found, health, read_only_document, serve_media
from core.metrics import metrics_view

api_patterns: list[URLPattern | URLResolver] = [
    path("", include("accounts.urls")),
    path("", include("quota.urls")),
    path("", include("tasks.urls")),
    path("", include("media.urls")),
    path("schema", read_only_document(SpectacularAPIView.as_view()), name="schema"),
    path("docs", read_only_document(SpectacularSwaggerView.as_view(url_name="schema")), name="docs"),
    re_path(r"^.*$", api_not_found),
]

urlpatterns = [
    path("health", health, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
]

if settings.STORAGE_BACKEND == "local":
    # Files of the local backend; a production deployment on local disk serves MEDIA_ROOT from its
    # reverse proxy at the same path instead.
    urlpatterns.append(re_path(r"^media/(?P<path>.*)$", serve_media))

handler400 = "core.apis.bad_request"
handler404 = "core.apis.not_found"
handler500 = "core.apis.server_error"
