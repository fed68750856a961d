"""Training endpoints: launch (leads), list, detail, cancel, merge, a run's artifacts, and the chat with a run."""

import time

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import server_paths
from core.lookups import project_object_or_404
from curation import selectors as curation_selectors
from curation.models import DatasetVersion

from . import base_models, selectors, services, views
from .models import ChatReply, TrainingRun
from .recipes.config import OPTIONS, Option

# Server paths in a run's answer show as $FINELINE_VAR_DIR/... (core.server_paths); artifacts download by name.
REDACTED = ("base_model", "log", "error", "adapter_dir", "merged_dir", "deployment")


class TrainingRunSerializer(serializers.ModelSerializer):
    dataset_version = serializers.IntegerField(source="dataset_version.number")
    created_by = serializers.CharField(source="created_by.username", default=None)
    trainable_fraction = serializers.SerializerMethodField()
    artifacts = serializers.SerializerMethodField(
        help_text="[{name, label, path, download}]: what the run wrote, where it lies relative to the data folder, "
        "and the URL that downloads it as a tar."
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "status",
            "dataset_version",
            "created_by",
            "base_model",
            "method",
            "config",
            "readiness_override",
            "step",
            "total_steps",
            "stage",
            "stage_step",
            "stage_total",
            "summary",
            "metrics",
            "log",
            "error",
            "trainable_params",
            "total_params",
            "trainable_fraction",
            "device",
            "artifacts",
            "adapter_dir",
            "deployment",
            "merge_status",
            "merged_dir",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_trainable_fraction(self, run: TrainingRun) -> float | None:
        return round(run.trainable_params / run.total_params, 6) if run.total_params else None

    def get_artifacts(self, run: TrainingRun) -> list[dict]:
        found = selectors.training_run_artifact_list(run=run)
        for artifact in found:
            artifact["download"] = reverse("training-run-artifact", args=[run.project.slug, run.pk, artifact["name"]])
        return found

    def to_representation(self, run: TrainingRun) -> dict:
        data = super().to_representation(run)
        for field in REDACTED:
            data[field] = server_paths.redact_all(data[field])
        return data


def _option_field(option: Option) -> serializers.Field:
    """A recipe setting as the schema shows it: type, bounds, meaning and default, read from SFTConfig."""
    common = {"required": False, "help_text": option.help}
    if option.shown_default:
        common["help_text"] += f" Default: {option.shown_default}."
    else:
        common["default"] = list(option.default) if option.kind is list else option.default
    if option.kind is bool:
        return serializers.BooleanField(**common)
    if option.kind is list:
        return serializers.ListField(child=serializers.CharField(), allow_empty=False, **common)
    field = serializers.IntegerField if option.kind is int else serializers.FloatField
    return field(min_value=option.min, max_value=option.max, allow_null=option.nullable, **common)


# For the schema only: the service checks the options itself (training_options_clean), so that a bad one is the same
# 400 naming it from the API, the launch form and the shell, and `lora_targets` may be comma-separated.
TrainingOptionsSerializer = type(
    "TrainingOptionsSerializer",
    (serializers.Serializer,),
    {name: _option_field(option) for name, option in OPTIONS.items()},
)


@extend_schema_field(TrainingOptionsSerializer)
class TrainingOptionsField(serializers.DictField):
    """The run's recipe settings: a dict checked by the service, documented as SFTConfig's options."""


class TrainingRunCreateSerializer(serializers.Serializer):
    dataset_version = serializers.IntegerField(help_text="The version's number in the project.")
    base_model = serializers.CharField(
        default="tiny-local",
        help_text="tiny-local, a listed model, a Hugging Face id (owner/name), or the absolute path of a folder under "
        "the models folder (FINELINE_MODELS_DIR).",
    )
    method = serializers.ChoiceField(choices=["lora", "full"], default="lora")
    options = TrainingOptionsField(
        required=False, help_text="Recipe settings (any of them; the rest keep their defaults), each checked for range."
    )
    override_readiness = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_base_model(self, value: str) -> str:
        return base_models.base_model_clean(value)  # a refusal is a 400 naming the field


def _launch_request(request, slug: str):
    """A lead's launch (or pre-flight) body, checked: the project, the data, and the dataset version it names."""
    project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
    serializer = TrainingRunCreateSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    version = DatasetVersion.objects.filter(project=project, number=data["dataset_version"]).first()
    if version is None:
        raise serializers.ValidationError({"dataset_version": ["No such version in this project."]})
    return project, data, version


class TrainingRunPreflightView(APIView):
    @extend_schema(
        request=TrainingRunCreateSerializer,
        responses={200: dict},
        description="What a launch with this body would cost: readiness, parameters, trainable share, memory, GPUs, "
        "steps and time (estimates; see the README for the formulas). Nothing is created.",
    )
    def post(self, request, slug: str):
        project, data, version = _launch_request(request, slug)
        preflight = selectors.training_run_preflight(
            project=project,
            version=version,
            base_model=data["base_model"].strip(),
            method=data["method"],
            options=services.training_options_clean(dict(data.get("options") or {})),
        )
        return Response(preflight)


class TrainingRunListView(APIView):
    @extend_schema(responses=TrainingRunSerializer(many=True))
    def get(self, request, slug: str):
        project = curation_selectors.project_get(user=request.user, slug=slug)
        runs = selectors.training_run_list(project=project)[:50]
        return Response(TrainingRunSerializer(runs, many=True).data)

    @extend_schema(request=TrainingRunCreateSerializer, responses={201: TrainingRunSerializer})
    def post(self, request, slug: str):
        project, data, version = _launch_request(request, slug)
        run = services.training_run_create(
            project=project,
            user=request.user,
            dataset_version=version,
            base_model=data["base_model"],
            method=data["method"],
            options=data.get("options"),
            override_readiness=data["override_readiness"],
        )
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)


def _run(request, slug: str, pk: int, *, lead: bool = False) -> TrainingRun:
    project = curation_selectors.project_get(user=request.user, slug=slug, lead=lead)
    return project_object_or_404(selectors.training_run_list(project=project), pk=pk, name="training run")


class TrainingRunDetailView(APIView):
    @extend_schema(responses=TrainingRunSerializer)
    def get(self, request, slug: str, pk: int):
        return Response(TrainingRunSerializer(_run(request, slug, pk)).data)


class TrainingRunCancelView(APIView):
    @extend_schema(request=None, responses=TrainingRunSerializer)
    def post(self, request, slug: str, pk: int):
        run = services.training_run_cancel(run=_run(request, slug, pk, lead=True))
        return Response(TrainingRunSerializer(run).data)


class TrainingRunMergeView(APIView):
    @extend_schema(request=None, responses={202: TrainingRunSerializer})
    def post(self, request, slug: str, pk: int):
        run = services.training_run_merge_request(run=_run(request, slug, pk, lead=True))
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunArtifactView(APIView):
    @extend_schema(
        responses={(200, "application/x-tar"): OpenApiResponse(OpenApiTypes.BINARY), 404: None},
        description="The run's artifact (adapter, model or merged) as an uncompressed tar of its folder.",
    )
    def get(self, request, slug: str, pk: int, name: str):
        return views.artifact_response(_run(request, slug, pk), name)


class ChatMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=list(services.CHAT_ROLES))
    content = serializers.CharField(trim_whitespace=False)


class ChatRequestSerializer(serializers.Serializer):
    messages = ChatMessageSerializer(
        many=True,
        allow_empty=False,
        help_text="The conversation up to the user's turn to answer (the last message is the user's). A system "
        "message is replaced by the project's system prompt.",
    )
    compare_base = serializers.BooleanField(default=True, help_text="Also answer with the base model, side by side.")


class ChatAnswerSerializer(serializers.Serializer):
    content = serializers.CharField(help_text="The answer (so far, while the chat is running).")
    format_ok = serializers.BooleanField(
        allow_null=True, help_text="Whether it fits the project's output format; null without one, or still running."
    )
    format_problems = serializers.ListField(child=serializers.CharField(), required=False)
    first_token_ms = serializers.FloatField(allow_null=True, help_text="Time to the first new token.")
    latency_ms = serializers.FloatField(allow_null=True, help_text="Time to the whole answer.")
    new_tokens = serializers.IntegerField(required=False)
    prompt_truncated = serializers.BooleanField(required=False, help_text="The conversation was cut to its last "
                                                "max_seq_length tokens.")  # fmt: skip


class ChatReplySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ChatReply.Status.choices)
    weights = serializers.CharField(help_text="What answered: 'final' (the finished run) or a checkpoint, step-N.")
    messages = ChatMessageSerializer(many=True)
    fine_tuned = ChatAnswerSerializer(allow_null=True)
    base = ChatAnswerSerializer(allow_null=True, help_text="null when compare_base was false.")
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField(help_text="Where to poll this chat.")


def _chat_body(project_slug: str, run: TrainingRun, reply: ChatReply) -> dict:
    data = selectors.chat_reply_data(reply=reply)
    data["url"] = reverse("training-run-chat-detail", args=[project_slug, run.pk, reply.pk])
    return ChatReplySerializer(data).data


class TrainingRunChatView(APIView):
    @extend_schema(
        request=ChatRequestSerializer,
        responses={200: ChatReplySerializer, 202: ChatReplySerializer},
        description="Leads: send a conversation to the run (its final weights, or its latest complete checkpoint "
        "while it trains) and, with compare_base, to its base model. A worker on the `gpu` queue answers; the call "
        "waits up to FINELINE_CHAT_WAIT_SECONDS and answers 200 with both answers, or 202 with the chat's `url` to "
        "poll. 400 when the conversation is not valid or the run has no complete checkpoint yet.",
    )
    def post(self, request, slug: str, pk: int):
        run = _run(request, slug, pk, lead=True)
        serializer = ChatRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        messages = [{"role": m["role"], "content": m["content"]} for m in data["messages"]]
        reply = services.chat_reply_create(
            run=run, user=request.user, messages=messages, compare_base=data["compare_base"]
        )
        deadline = time.monotonic() + settings.FINELINE_CHAT_WAIT_SECONDS
        while time.monotonic() < deadline:
            reply.refresh_from_db()
            if reply.status not in ChatReply.ACTIVE:
                break
            time.sleep(0.05)
        code = status.HTTP_202_ACCEPTED if reply.status in ChatReply.ACTIVE else status.HTTP_200_OK
        return Response(_chat_body(slug, run, reply), status=code)


class TrainingRunChatDetailView(APIView):
    @extend_schema(responses=ChatReplySerializer, description="Leads: a chat with the run, its answers so far.")
    def get(self, request, slug: str, pk: int, reply: int):
        run = _run(request, slug, pk, lead=True)
        found = project_object_or_404(ChatReply.objects.filter(run=run), pk=reply, name="chat")
        return Response(_chat_body(slug, run, found))
