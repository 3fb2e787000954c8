from django.urls import URLPattern, URLResolver, path

from relais.listening import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.mentions, name="listening"),
    path("rows/", views.mention_rows, name="listening_rows"),
    path("queries/", views.query_list, name="listening_queries"),
    path("queries/edit/", views.query_edit, name="listening_query_edit"),
    path("queries/archive/", views.query_archive, name="listening_query_archive"),
    path("dashboard/", views.dashboard, name="listening_dashboard"),
    path("alerts/", views.alert_list, name="listening_alerts"),
    path("alerts/rows/", views.alert_rows, name="listening_alert_rows"),
    path("alerts/channels/", views.channel_create, name="listening_channel_create"),
    path("alerts/channels/delete/", views.channel_delete, name="listening_channel_delete"),
]
