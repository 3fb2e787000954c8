from django.apps import AppConfig


class ListeningConfig(AppConfig):
    name = "relais.listening"
    label = "listening"
