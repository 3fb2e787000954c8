import logging

from django.apps import AppConfig

# These libraries log each request's full URL at INFO (httpx) or DEBUG; alert channel URLs carry
# passwords and tokens in their path or credentials, so their request lines are never logged.
URL_LOGGING_LIBRARIES = ("httpx", "httpcore", "apprise")


class ListeningConfig(AppConfig):
    name = "relais.listening"
    label = "listening"

    def ready(self) -> None:
        for name in URL_LOGGING_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
