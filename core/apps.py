from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


def data_folders_create() -> None:
    """Make the folders the settings name and nothing else makes: the data folder (SQLite's database file needs its
    folder), the static root (WhiteNoise warns when it is missing) and, on the filesystem broker, the queue, processed
    and control folders (kombu makes none of its parents). At start-up, not when the settings are imported."""
    folders = [Path(settings.VAR_DIR), Path(settings.STATIC_ROOT)]
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders += [Path(options[key]) for key in ("data_folder_in", "processed_folder", "control_folder")]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from .auth import connect_signals

        data_folders_create()
        connect_signals()
