"""Addresses networks call (not under a workspace): mounted at /hooks/ by config/urls.py."""

from django.urls import URLPattern, path

from relais.connectors import webhooks

urlpatterns: list[URLPattern] = [
    path("meta/", webhooks.meta_webhook, name="meta_webhook"),
]
