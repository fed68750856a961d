"""Recount the examples into the counters the dashboard and readiness read, and put their triggers back if missing.

Usage:
    manage.py rebuild_counters            # every project
    manage.py rebuild_counters --project triage
    manage.py rebuild_counters --check    # only compare; exits 1 when the counters disagree with the examples
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from curation import counters
from curation.models import Project


class Command(BaseCommand):
    help = "Recount the examples into curation_examplecounter (and reinstall its triggers if a migration dropped them)."

    def add_arguments(self, parser):
        parser.add_argument("--project", help="a project's slug (default: every project)")
        parser.add_argument("--check", action="store_true", help="compare only; exit 1 on any difference")

    def handle(self, *args, project=None, check=False, **options):
        project_id = None
        if project:
            found = Project.objects.filter(slug=project).values_list("id", flat=True).first()
            if found is None:
                raise CommandError(f"No project with the slug {project!r}.")
            project_id = found
        triggers = counters.installed(connection)
        fresh = counters.fresh_counts(connection, project_id)
        kept = counters.maintained_counts(connection, project_id)
        differing = sorted(key for key in fresh.keys() | kept.keys() if fresh[key] != kept[key])
        self.stdout.write(
            f"triggers: {'installed' if triggers else 'MISSING'}; {sum(fresh.values())} examples in"
            f" {len(fresh)} counter groups; {len(differing)} groups differ"
        )
        for key in differing[:20]:
            self.stdout.write(f"  {key}: counters {kept[key]}, examples {fresh[key]}")
        if check:
            if differing or not triggers:
                raise CommandError("The counters disagree with the examples; run rebuild_counters.")
            return
        if not triggers:
            # Without triggers every project's counts went stale, whichever was asked for.
            counters.install(connection)
            project_id = None
        rows = counters.rebuild(connection, project_id)
        self.stdout.write(self.style.SUCCESS(f"Rebuilt {rows} counter rows."))
