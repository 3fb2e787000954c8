from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "relais.publishing"
    label = "publishing"
