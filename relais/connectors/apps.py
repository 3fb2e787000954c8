from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "relais.connectors"
    label = "connectors"

    def ready(self) -> None:
        from relais.connectors import checks  # noqa: F401  (registers the system checks)
