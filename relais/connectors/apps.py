from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "relais.connectors"
    label = "connectors"
