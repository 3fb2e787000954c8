from django.urls import URLPattern, URLResolver, include, path

from relais.web import live, views

workspace_patterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("counters/", views.counters, name="counters"),
    path("stream/", views.stream, name="stream"),
    path("stream/rows/", views.stream_rows, name="stream_rows"),
    path("", include("relais.inbox.urls")),
    path("events/", live.events, name="events"),
    path("listening/", include("relais.listening.urls")),
    path("publishing/", include("relais.publishing.urls")),
    path("accounts/", include("relais.connectors.urls")),
]

urlpatterns = [
    path("", views.home_redirect, name="root"),
    path("w/<slug:workspace_slug>/", include(workspace_patterns)),
]
