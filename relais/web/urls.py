from django.urls import URLPattern, URLResolver, include, path

from relais.web import live, views

workspace_patterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("counters/", views.counters, name="counters"),
    path("stream/", views.stream, name="stream"),
    path("stream/rows/", views.stream_rows, name="stream_rows"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/rows/", views.inbox_rows, name="inbox_rows"),
    path("conversations/<int:conversation_id>/", views.conversation, name="conversation"),
    path(
        "conversations/<int:conversation_id>/thread/",
        views.conversation_thread,
        name="conversation_thread",
    ),
    path("conversations/<int:conversation_id>/reply/", views.reply, name="reply"),
    path("conversations/<int:conversation_id>/note/", views.add_note, name="add_note"),
    path("conversations/<int:conversation_id>/status/", views.change_status, name="change_status"),
    path("conversations/<int:conversation_id>/assign/", views.assign, name="assign"),
    path("events/", live.events, name="events"),
    path("listening/", include("relais.listening.urls")),
    path("publishing/", include("relais.publishing.urls")),
    path("accounts/", include("relais.connectors.urls")),
]

urlpatterns = [
    path("", views.home_redirect, name="root"),
    path("w/<slug:workspace_slug>/", include(workspace_patterns)),
]
