"""Training runs: one row per fine-tune, the source of truth for its status, progress and artifacts."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import LeasedJob


class TrainingRun(LeasedJob):
    """A LoRA or full fine-tune of a base model on a frozen dataset version, run by a worker on the `gpu` queue."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.CANCELLING)
    LEASE_SETTING = "FINELINE_RUN_LEASE_SECONDS"

    project = models.ForeignKey("curation.Project", on_delete=models.CASCADE, related_name="training_runs")
    dataset_version = models.ForeignKey("curation.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    base_model = models.CharField(max_length=300, help_text="A Hugging Face id, a local folder, or tiny-local.")
    method = models.CharField(max_length=10, default="lora")
    config = models.JSONField(default=dict, help_text="The recipe's settings (training.recipes.sft.SFTConfig).")
    readiness_override = models.TextField(blank=True, help_text="Why the lead trained on data that was not ready.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    stage = models.CharField(
        max_length=100, blank=True, help_text="What the worker does before the first step (building the base...)."
    )
    stage_step = models.PositiveIntegerField(default=0, help_text="The stage's progress: done of stage_total.")
    stage_total = models.PositiveIntegerField(default=0)
    summary = models.JSONField(
        default=dict, blank=True, help_text="What the run found in its data, e.g. the examples it truncated."
    )
    metrics = models.JSONField(default=list, blank=True, help_text="One entry per logged step: loss, accuracy...")
    trainable_params = models.BigIntegerField(null=True, blank=True)
    total_params = models.BigIntegerField(null=True, blank=True)
    device = models.CharField(max_length=50, blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    adapter_dir = models.CharField(max_length=500, blank=True)
    deployment = models.JSONField(default=dict, blank=True, help_text="The vllm serve command and Ollama Modelfile.")
    merge_status = models.CharField(
        max_length=10, blank=True, default="", help_text="'' (not asked), queued, running, done or failed."
    )
    merged_dir = models.CharField(max_length=500, blank=True, help_text="The adapter merged into the base weights.")
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "cancelling", "succeeded", "failed", "cancelled"]),
                name="trainingrun_status_valid",
            ),
            models.CheckConstraint(condition=Q(method__in=["lora", "full"]), name="trainingrun_method_valid"),
            models.CheckConstraint(
                condition=Q(merge_status__in=["", "queued", "running", "done", "failed"]),
                name="trainingrun_merge_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} of {self.project}"


class ChatReply(models.Model):
    """One message of the "try the model" chat: a conversation sent to a run's weights (its final adapter or model,
    or its latest complete checkpoint while it trains) and, beside them, to the base model, answered by a worker on
    the `chat` queue. `answers` holds each system's text as it streams in: {system: {content, format_ok,
    first_token_ms, latency_ms, done}}."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Answering"
        SUCCEEDED = "succeeded", "Answered"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="chat_replies")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    messages = models.JSONField(help_text="The conversation as sent, up to the user's last turn.")
    compare_base = models.BooleanField(default=True)
    weights = models.CharField(
        max_length=50, blank=True, help_text="What answers: the run's final weights ('final') or a checkpoint (step-N)."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    answers = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]), name="chatreply_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Chat #{self.pk} with run #{self.run_id}"
