from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "relais.sandbox"
    label = "sandbox"
