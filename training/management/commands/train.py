"""Launch a fine-tune from a shell and print the run as JSON."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import ServiceError
from curation import selectors as curation_selectors
from curation.models import DatasetVersion, Project
from training import services
from training.api import TrainingRunSerializer
from training.models import TrainingRun
from training.presets import PRESETS, preset_default
from training.waiting import job_wait, wait_arguments_add


class Command(BaseCommand):
    help = "Train on version N of project SLUG (LoRA on tiny-local by default) and print the run as JSON."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--dataset-version", type=int, required=True)
        parser.add_argument("--base-model", default=services.TINY_LOCAL)
        parser.add_argument("--method", choices=["lora", "full"], default="lora")
        parser.add_argument(
            "--preset",
            choices=sorted(PRESETS),
            help="Starting settings (default: tiny-local-demo for tiny-local, lora-default otherwise).",
        )
        parser.add_argument("--max-steps", type=int, help="Stop after this many optimizer steps.")
        parser.add_argument("--override-readiness", default="", help="Why to train although the data is not ready.")
        wait_arguments_add(parser, verb="Train")

    def handle(
        self,
        slug,
        dataset_version,
        base_model,
        method,
        preset,
        max_steps,
        override_readiness,
        user,
        wait,
        inline,
        notice_after,
        **options,
    ):
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project with slug {slug!r}.")
        version = DatasetVersion.objects.filter(project=project, number=dataset_version).first()
        if version is None:
            raise CommandError(f"No version {dataset_version} in {slug}.")
        if user:
            launcher = get_user_model().objects.filter(username=user).first()
        else:
            launcher = curation_selectors.project_lead(project=project)
        preset = PRESETS[preset or preset_default(base_model=base_model)]
        recipe = dict(preset["options"]) if preset["method"] == method else {}
        if max_steps:
            recipe["max_steps"] = max_steps
        try:
            run = services.training_run_create(
                project=project,
                user=launcher,
                dataset_version=version,
                base_model=base_model,
                method=method,
                options=recipe,
                override_readiness=override_readiness,
                enqueue=not inline,
            )
        except ServiceError as error:
            raise CommandError(error.message)
        if inline:
            services.training_run_execute(run_id=run.pk)
        elif wait:
            job_wait(
                model=TrainingRun,
                pk=run.pk,
                queue="gpu",
                describe=_progress,
                write=self.stderr.write,
                notice_after=notice_after,
            )
        run.refresh_from_db()
        self.stdout.write(json.dumps(TrainingRunSerializer(run).data, indent=2, default=str))


def _progress(run: TrainingRun) -> str:
    stage = f"step {run.step}/{run.total_steps}" if run.total_steps else "waiting for a worker"
    if run.status == TrainingRun.Status.RUNNING and not run.total_steps:
        stage = (run.log.strip().splitlines() or ["starting"])[-1]
    return f"run {run.pk} {run.status}: {stage}"
