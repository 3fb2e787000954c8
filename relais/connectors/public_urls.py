"""Addresses networks call (not under a workspace): mounted at /hooks/ by config/urls.py."""

from django.urls import URLPattern, path

from relais.connectors import views, webhooks

urlpatterns: list[URLPattern] = [
    path("meta/", webhooks.meta_webhook, name="meta_webhook"),
    # atproto OAuth: Relais' client metadata (its client_id) and the address browsers return to
    path(
        "bluesky/client-metadata.json",
        views.bluesky_client_metadata,
        name="bluesky_client_metadata",
    ),
    path("bluesky/jwks.json", views.bluesky_client_jwks, name="bluesky_client_jwks"),
    path("bluesky/oauth/", views.bluesky_oauth_return, name="bluesky_oauth_return"),
]
