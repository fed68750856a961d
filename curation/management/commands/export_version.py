"""Write a frozen dataset version: each split as JSONL, or the whole version as a Hugging Face datasets folder."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from curation import selectors, services
from curation.models import DatasetVersion


class Command(BaseCommand):
    help = "Export version NUMBER of project SLUG into OUTPUT: train/val/test .jsonl files, or a datasets folder."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("number", type=int)
        parser.add_argument("output", help="A folder (created if missing).")
        parser.add_argument("--hf", action="store_true", help="Write a Hugging Face datasets folder (load_from_disk).")

    def handle(self, slug, number, output, hf, **options):
        version = DatasetVersion.objects.filter(project__slug=slug, number=number).select_related("project").first()
        if version is None:
            raise CommandError(f"No version {number} in project {slug!r}.")
        target = Path(output)
        if hf:
            services.dataset_version_save_hf(version=version, path=target)
        else:
            target.mkdir(parents=True, exist_ok=True)
            for split in ("train", "val", "test"):
                with (target / f"{split}.jsonl").open("wb") as out:
                    try:
                        for line in selectors.version_export_lines(version=version, split=split):
                            out.write(line)
                    except selectors.ExportError as error:
                        raise CommandError(f"{split}.jsonl: {error}")
        self.stdout.write(f"Wrote version {number} of {slug} to {target}.")
