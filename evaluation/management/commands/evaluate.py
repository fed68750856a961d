"""Evaluate a training run against the baselines from a shell and print the evaluation as JSON."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import ServiceError
from curation import selectors as curation_selectors
from evaluation import services
from evaluation.api import EvaluationSerializer
from evaluation.models import SYSTEMS, Evaluation
from training.models import TrainingRun
from training.waiting import job_wait, wait_arguments_add


class Command(BaseCommand):
    help = "Evaluate training run RUN_ID on its version's test split against the baselines; print it as JSON."

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int)
        parser.add_argument("--systems", help=f"Comma-separated, among {', '.join(SYSTEMS)} (default: all).")
        parser.add_argument("--primary", help="Comma-separated primary metrics (default: fit to the task's shape).")
        wait_arguments_add(parser, verb="Evaluate")

    def handle(self, run_id, systems, primary, user, wait, inline, notice_after, **options):
        run = TrainingRun.objects.select_related("project").filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"No training run {run_id}.")
        if user:
            launcher = get_user_model().objects.filter(username=user).first()
        else:
            launcher = curation_selectors.project_lead(project=run.project)
        try:
            evaluation = services.evaluation_create(
                project=run.project,
                user=launcher,
                training_run=run,
                systems=systems.split(",") if systems else None,
                primary_metrics=primary.split(",") if primary else None,
                enqueue=not inline,
            )
        except ServiceError as error:
            raise CommandError(error.message)
        if inline:
            services.evaluation_execute(evaluation_id=evaluation.pk)
        elif wait:
            job_wait(
                model=Evaluation,
                pk=evaluation.pk,
                queue="gpu",
                describe=lambda row: f"{row.status}: {row.stage or 'waiting for a worker'} ({row.done}/{row.total})",
                write=self.stderr.write,
                notice_after=notice_after,
            )
        evaluation.refresh_from_db()
        self.stdout.write(json.dumps(EvaluationSerializer(evaluation).data, indent=2, default=str))
