"""Celery tasks of curation: thin wrappers that load ids and call one service."""

from celery import shared_task
from celery.signals import worker_ready

from core import leases

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


@shared_task(name="curation.import_run", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def import_run(job_id: int) -> None:
    services.import_job_run(job_id=job_id)


@shared_task(name="curation.imports_recover", ignore_result=True)
def imports_recover() -> int:
    """Periodic (celery beat): requeue, or fail, the imports whose worker died."""
    return services.import_jobs_recover()


@worker_ready.connect
def recover_on_start(**kwargs) -> None:
    leases.recover_at_start(services.import_jobs_recover, jobs="import(s)")
