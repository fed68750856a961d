"""Write a project's examples as JSONL (OpenAI chat format) to stdout or a file."""

import sys

from django.core.management.base import BaseCommand, CommandError

from curation import selectors
from curation.models import Project, ReviewStatus


class Command(BaseCommand):
    help = "Export the examples of project SLUG as JSONL."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--status", choices=ReviewStatus.values, default="")
        parser.add_argument("--label", default="")
        parser.add_argument("--tag", default="")
        parser.add_argument("--messages-only", action="store_true", help="Only `messages` on each line.")
        parser.add_argument("--output", "-o", help="File to write (default: stdout).")

    def handle(self, slug, status, label, tag, messages_only, output, **options):
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project with slug {slug!r}.")
        examples = selectors.example_list(project=project, status=status, label=label, tag=tag)
        lines = selectors.example_export_lines(examples=examples, messages_only=messages_only)
        target = open(output, "wb") if output else sys.stdout.buffer
        count = 0
        try:
            for line in lines:
                target.write(line)
                count += 1
        except selectors.ExportError as error:
            raise CommandError(str(error))
        finally:
            if output:
                target.close()
        self.stderr.write(f"Exported {count} example(s).")
