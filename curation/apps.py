from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _counters_ensure(sender, using, **kwargs):
    """Every migrate ends with the counter triggers in place (a SQLite table rebuild drops them) and, if they were
    missing, with the counters recounted."""
    from django.db import connections

    from . import counters

    counters.ensure(connections[using])


class CurationConfig(AppConfig):
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        post_migrate.connect(_counters_ensure, sender=self, dispatch_uid="curation_counters_ensure")
