from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "relais.pipeline"
    label = "pipeline"
