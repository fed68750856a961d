"""Create the demo: three users and the support-triage project with its generated tickets, some already reviewed."""

import random

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from curation import demo, formats, services
from curation.models import Example, Project, ReviewStatus

DEMO_PASSWORD = "fineline-demo"
DEMO_USERS = [("lena", "lead"), ("maria", "expert"), ("alex", "expert")]
SLUG = "support-triage"


class Command(BaseCommand):
    help = "Load the demo project (idempotent: an existing demo is left as it is unless --reset)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete the demo project and load it afresh.")
        parser.add_argument("--count", type=int, default=900, help="Generated tickets (before edge cases/duplicates).")

    def handle(self, reset, count, **options):
        users = {name: self._user(name) for name, _ in DEMO_USERS}
        if reset:
            Project.objects.filter(slug=SLUG).delete()
        if not Project.objects.filter(slug=SLUG).exists():
            self._load(users, count)
        else:
            self.stdout.write(f"The demo project '{SLUG}' exists already (use --reset to reload it).")
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
        for name, role in DEMO_USERS:
            self.stdout.write(f"  {name:6} {role}")

    def _user(self, name):
        user, created = get_user_model().objects.get_or_create(username=name, defaults={"email": f"{name}@example.com"})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        return user

    @transaction.atomic
    def _load(self, users, count):
        project = services.project_create(
            creator=users["lena"],
            name="Support triage",
            slug=SLUG,
            task_description="Classify support tickets by severity (P1-P4), state the impact and the next action.",
            system_prompt=demo.SYSTEM_PROMPT,
            labels=demo.LABELS,
            output_format=demo.OUTPUT_FORMAT,
        )
        for name, role in DEMO_USERS[1:]:
            services.membership_set(project=project, user=users[name], role=role)
        rows = demo.generate(count=count)
        limits = services.import_limits()
        records = []
        for line, row in enumerate(rows, start=1):
            try:
                records.append(
                    formats.example_from_object(row, line, fmt="openai", labels=frozenset(demo.LABELS), limits=limits)
                )
            except formats.InvalidExample as error:
                records.append(formats.LineError(line, error.code, error.message))
        job = services.import_examples(project=project, user=users["lena"], records=records, source="demo")
        self.stdout.write(
            f"Imported {job.created_count} tickets into '{project.name}' "
            f"({job.duplicate_count} exact duplicates dropped, {job.rejected_count} rejected)."
        )
        self._review_some(project, users)
        scan = services.quality_scan_run(scan=services.quality_scan_start(project=project))
        self.stdout.write(f"Quality scan: {scan.clusters} near-duplicate clusters among {scan.examples} examples.")

    def _review_some(self, project, users):
        """About a fifth already reviewed by the two experts, with a few rejections and a fixed answer."""
        rng = random.Random(11)
        experts = [users["maria"], users["alex"]]
        examples = list(Example.objects.filter(project=project).order_by("id")[:260])
        for example in examples:
            outcome = rng.choices(
                [ReviewStatus.APPROVED, ReviewStatus.NEEDS_CHANGES, ReviewStatus.REJECTED], [0.9, 0.06, 0.04]
            )[0]
            services.example_review(
                example=example,
                reviewer=rng.choice(experts),
                version=example.version,
                decision=outcome,
                label=example.label,
                # "Needs changes" says what: the review form asks for it too.
                comment="The answer should say who acts next." if outcome == ReviewStatus.NEEDS_CHANGES else "",
            )
        fixed = Example.objects.get(pk=examples[0].pk)
        messages = [dict(message) for message in fixed.messages]
        messages[-1]["content"] = messages[-1]["content"].replace("ACTION: ", "ACTION: Acknowledge within 15 minutes. ")
        services.example_update(
            example=fixed,
            user=users["maria"],
            version=fixed.version,
            changes={"messages": messages},
            comment="Added the acknowledgement time our SLA promises.",
        )
        self.stdout.write(f"Reviewed {len(examples)} examples as maria and alex.")
