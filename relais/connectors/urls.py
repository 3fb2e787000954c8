"""Connected accounts, included under /w/<slug>/accounts/."""

from django.urls import URLPattern, URLResolver, path

from relais.connectors import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.accounts, name="accounts"),
    path("bluesky/", views.connect_bluesky, name="connect_bluesky"),
    path("feeds/", views.connect_feed, name="connect_feed"),
    path("mastodon/", views.connect_mastodon, name="connect_mastodon"),
    path("mastodon/done/", views.mastodon_callback, name="mastodon_callback"),
]
