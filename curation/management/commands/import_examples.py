"""Import a JSONL or JSON file into a project, with a progress bar and the same report as the API."""

import json
import os
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from curation import formats, selectors, services
from curation.models import ImportJob, Project


class Command(BaseCommand):
    help = "Import examples from FILE (JSONL, or a JSON array when it ends in .json) into the project SLUG."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("file")
        parser.add_argument("--mode", choices=ImportJob.Mode.values, default=ImportJob.Mode.ATOMIC)
        parser.add_argument("--format", choices=formats.FORMATS, default="auto", dest="fmt")

    def handle(self, slug, file, mode, fmt, **options):
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project with slug {slug!r}.")
        if not os.path.isfile(file):
            raise CommandError(f"No such file: {file}")
        options = {"fmt": fmt, "labels": project.labels, "limits": services.import_limits()}
        size = os.path.getsize(file)
        with open(file, "rb") as handle, tqdm(total=size, unit="B", unit_scale=True, disable=None) as bar:
            if file.endswith(".json"):
                records = formats.read_json_document(handle.read(), **options)
                bar.update(size)
            else:
                records = formats.read_jsonl(_Progress(handle, bar), max_body_bytes=sys.maxsize, **options)
            job = services.import_examples(
                project=project,
                user=selectors.project_lead(project=project),
                records=records,
                fmt=fmt,
                mode=mode,
                source=f"cli:{os.path.basename(file)}"[:200],
            )
        report = {
            "id": job.pk,
            "status": job.status,
            "created": job.created_count,
            "duplicates": job.duplicate_count,
            "rejected": job.rejected_count,
            "errors": job.errors,
        }
        self.stdout.write(json.dumps(report, indent=2))
        if job.status != ImportJob.Status.SUCCEEDED:
            raise CommandError(f"{job.rejected_count} line(s) rejected; nothing was written (atomic mode).")


class _Progress:
    """A file wrapper that advances the progress bar as the file is read."""

    def __init__(self, handle, bar):
        self._handle, self._bar = handle, bar

    def read(self, size=-1):
        chunk = self._handle.read(size)
        self._bar.update(len(chunk))
        return chunk
