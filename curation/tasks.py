"""Celery tasks of curation: thin wrappers that load ids and call one service."""

from celery import shared_task

from . import services


@shared_task(name="curation.example_search_index", ignore_result=True)
def example_search_index(project_id: int, imported: int = 0) -> int:
    return services.example_search_index(project_id=project_id, imported=imported)


@shared_task(name="curation.quality_scan_run", ignore_result=True)
def quality_scan_run(scan_id: int) -> None:
    from .models import QualityScan

    scan = QualityScan.objects.select_related("project").filter(pk=scan_id).first()
    if scan is not None and scan.status == QualityScan.Status.QUEUED:
        services.quality_scan_run(scan=scan)
