"""Connected accounts, included under /w/<slug>/accounts/."""

from django.urls import URLPattern, URLResolver, path

from relais.connectors import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.accounts, name="accounts"),
    path("bluesky/", views.connect_bluesky, name="connect_bluesky"),
    path("bluesky/oauth/", views.connect_bluesky_oauth, name="connect_bluesky_oauth"),
    path("bluesky/oauth/done/", views.bluesky_oauth_done, name="bluesky_oauth_done"),
    path("feeds/", views.connect_feed, name="connect_feed"),
    path("mastodon/", views.connect_mastodon, name="connect_mastodon"),
    path("mastodon/done/", views.mastodon_callback, name="mastodon_callback"),
    path("x/", views.connect_x, name="connect_x"),
    path("x/done/", views.x_callback, name="x_callback"),
    path("x/budget/", views.set_x_budget, name="set_x_budget"),
    path("facebook/", views.connect_facebook, name="connect_facebook"),
    path("facebook/login/", views.connect_facebook_login, name="connect_facebook_login"),
    path("facebook/done/", views.facebook_callback, name="facebook_callback"),
]
