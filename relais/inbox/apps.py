from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "relais.inbox"
    label = "inbox"
