"""Celery tasks of curation: thin wrappers that load ids and call one service."""

from celery import shared_task

from . import services


@shared_task(name="curation.example_search_index", ignore_result=True)
def example_search_index(project_id: int, imported: int = 0) -> int:
    return services.example_search_index(project_id=project_id, imported=imported)
