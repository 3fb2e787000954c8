"""Connected accounts, included under /w/<slug>/accounts/."""

from django.urls import URLPattern, URLResolver, path

from relais.connectors import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.accounts, name="accounts"),
    path("bluesky/", views.connect_bluesky, name="connect_bluesky"),
    path("feeds/", views.connect_feed, name="connect_feed"),
    path("mastodon/", views.connect_mastodon, name="connect_mastodon"),
    path("mastodon/done/", views.mastodon_callback, name="mastodon_callback"),
    path("x/", views.connect_x, name="connect_x"),
    path("x/done/", views.x_callback, name="x_callback"),
    path("x/budget/", views.set_x_budget, name="set_x_budget"),
    path("facebook/", views.connect_facebook, name="connect_facebook"),
]
