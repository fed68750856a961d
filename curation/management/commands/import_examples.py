"""Import a JSONL, JSON, CSV or Parquet file into a project, with a progress bar and the same report as the API."""

import json
import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from curation import formats, selectors, services
from curation.models import ImportJob, Project


class Command(BaseCommand):
    help = (
        "Import examples from FILE into the project SLUG: JSONL, a JSON array (.json), CSV (.csv, a header row) or"
        " Parquet (.parquet). Rows in another shape need --mapping."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("file")
        parser.add_argument("--mode", choices=ImportJob.Mode.values, default=ImportJob.Mode.ATOMIC)
        parser.add_argument(
            "--format",
            choices=formats.FORMATS + formats.FILE_FORMATS,
            default="auto",
            dest="fmt",
            help="the rows' shape (auto detects it per line), or csv / parquet whatever the file's extension",
        )
        parser.add_argument(
            "--mapping",
            help='a column mapping as JSON, or @FILE holding it, e.g. \'{"user": ["instruction", "context"],'
            ' "assistant": "response", "label": "category"}\'',
        )

    def handle(self, slug, file, mode, fmt, mapping=None, **options):
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project with slug {slug!r}.")
        if not os.path.isfile(file):
            raise CommandError(f"No such file: {file}")
        column_mapping = _mapping(mapping, fmt) if mapping else None
        size = os.path.getsize(file)
        with open(file, "rb") as handle, tqdm(total=size, unit="B", unit_scale=True, disable=None) as bar:
            kind = formats.file_kind(requested=fmt, name=file, head=handle.read(64))
            handle.seek(0)
            # Parquet seeks to its index at the end: it gets the file itself and the bar jumps when it is done.
            stream = handle if kind == "parquet" else _Progress(handle, bar)
            records = formats.read_input(
                kind,
                stream,
                fmt=fmt,
                labels=project.labels,
                limits=services.import_limits(),
                max_body_bytes=sys.maxsize,
                mapping=column_mapping,
            )
            job = services.import_examples(
                project=project,
                user=selectors.project_lead(project=project),
                records=records,
                fmt=kind if kind in formats.FILE_FORMATS else fmt,
                mode=mode,
                source=f"cli:{os.path.basename(file)}"[:200],
                mapping=column_mapping,
            )
            bar.update(size - bar.n)
        report = {
            "id": job.pk,
            "status": job.status,
            "created": job.created_count,
            "duplicates": job.duplicate_count,
            "rejected": job.rejected_count,
            "ignored_keys": job.ignored_keys,
            "errors": job.errors,
        }
        self.stdout.write(json.dumps(report, indent=2))
        if job.status == ImportJob.Status.PARTIAL:
            self.stderr.write(f"{job.rejected_count} line(s) rejected; the other lines were imported (partial mode).")
        elif job.status == ImportJob.Status.FAILED:
            if not job.total_lines:
                raise CommandError("The file holds no examples; nothing was written.")
            if mode == ImportJob.Mode.ATOMIC:
                raise CommandError(f"{job.rejected_count} line(s) rejected; nothing was written (atomic mode).")
            raise CommandError(f"Every line ({job.rejected_count}) was rejected; nothing was written.")


def _mapping(value: str, fmt: str) -> formats.ColumnMapping:
    if value.startswith("@"):
        try:
            value = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise CommandError(f"Cannot read the mapping file: {error}") from None
    if fmt not in ("auto", *formats.FILE_FORMATS):
        raise CommandError(f"A mapping replaces --format {fmt}; give one or the other.")
    try:
        return formats.mapping_parse(value)
    except formats.MappingError as error:
        raise CommandError(str(error)) from None


class _Progress:
    """A file wrapper that advances the progress bar as the file is read."""

    def __init__(self, handle, bar):
        self._handle, self._bar = handle, bar

    def read(self, size=-1):
        chunk = self._handle.read(size)
        self._bar.update(len(chunk))
        return chunk
