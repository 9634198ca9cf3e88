from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from observability import metrics

        metrics.connect_worker_exporter()
