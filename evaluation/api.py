"""Evaluation endpoints: launch (leads), list, detail with results and verdict, per-example answers, prompt variants."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import server_paths
from core.errors import ServiceError
from core.lookups import project_object_or_404
from curation import selectors as curation_selectors
from training.models import TrainingRun

from . import generation, metrics, selectors, services
from .models import SYSTEMS, AnswerRating, Evaluation, EvaluationAnswer, GenerationJob, PromptVariant


class EvaluationSerializer(serializers.ModelSerializer):
    training_run = serializers.IntegerField(source="training_run_id", allow_null=True)
    verdict = serializers.JSONField(
        read_only=True,
        help_text="outcome (beats_all | loses | inconclusive | no_signal), beats_all, summary, n (test examples), "
        "task_shape, primary_reason, comparisons [{baseline, metric, candidate, baseline_value, difference, ci_low, "
        "ci_high, n, significant, better, n_needed}], wins, losses, undecided, skipped, left_out, n_needed, "
        "to_conclude, best {metric: system or null}.",
    )
    dataset_version = serializers.IntegerField(source="dataset_version.number")
    created_by = serializers.CharField(source="created_by.username", default=None)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = [
            "id",
            "status",
            "training_run",
            "dataset_version",
            "created_by",
            "systems",
            "primary_metrics",
            "progress",
            "results",
            "verdict",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, evaluation: Evaluation) -> dict:
        return {"done": evaluation.done, "total": evaluation.total, "stage": evaluation.stage}

    def to_representation(self, evaluation: Evaluation) -> dict:
        data = super().to_representation(evaluation)
        # an exception's text may name a server folder: shown as $FINELINE_VAR_DIR/... (core.server_paths)
        data["error"], data["results"] = server_paths.redact(data["error"]), server_paths.redact_all(data["results"])
        return data


class EvaluationCreateSerializer(serializers.Serializer):
    training_run = serializers.IntegerField(help_text="The id of a succeeded training run of the project.")
    systems = serializers.ListField(
        child=serializers.ChoiceField(choices=SYSTEMS), required=False, help_text="Default: all five."
    )
    primary_metrics = serializers.ListField(
        child=serializers.ChoiceField(choices=list(metrics.HIGHER_IS_BETTER)),
        required=False,
        help_text="The verdict's metrics. Default: chosen from the task's shape (format: format_accuracy and "
        "label_accuracy or chrf; label: label_accuracy and macro_f1; free-form: chrf and content_relevance).",
    )


class EvaluationListView(APIView):
    @extend_schema(responses=EvaluationSerializer(many=True))
    def get(self, request, slug: str):
        project = curation_selectors.project_get(user=request.user, slug=slug)
        return Response(EvaluationSerializer(selectors.evaluation_list(project=project)[:50], many=True).data)

    @extend_schema(request=EvaluationCreateSerializer, responses={201: EvaluationSerializer})
    def post(self, request, slug: str):
        project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
        serializer = EvaluationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = TrainingRun.objects.filter(project=project, pk=data["training_run"]).first()
        if run is None:
            raise serializers.ValidationError({"training_run": ["No such training run in this project."]})
        evaluation = services.evaluation_create(
            project=project,
            user=request.user,
            training_run=run,
            systems=data.get("systems"),
            primary_metrics=data.get("primary_metrics"),
        )
        return Response(EvaluationSerializer(evaluation).data, status=status.HTTP_201_CREATED)


def _evaluation(request, slug: str, pk: int) -> Evaluation:
    project = curation_selectors.project_get(user=request.user, slug=slug)
    return project_object_or_404(selectors.evaluation_list(project=project), pk=pk, name="evaluation")


class JudgeAgreementSerializer(serializers.Serializer):
    n = serializers.IntegerField(
        help_text="Answers both the judge scored and at least one expert rated (the pairs rho and kappa rest on)."
    )
    ratings = serializers.IntegerField(help_text="The experts' ratings of those answers (several raters may rate one).")
    relevance_spearman = serializers.FloatField(
        allow_null=True,
        help_text="Spearman's rho (ties: average ranks) of the judge's relevance against the mean of the experts' 1-5; "
        "null when undefined (fewer than 2 answers, or either side's scores all equal).",
    )
    unsupported_kappa = serializers.FloatField(
        allow_null=True,
        help_text="Cohen's kappa of the judge's unsupported flag against the experts' majority (a tie counts as "
        "unsupported); null when undefined (no answer, or judge and experts giving one same class throughout).",
    )
    warning = serializers.CharField(
        allow_blank=True,
        help_text="Why the judge is not to be trusted yet (rho or kappa under 0.6, undefined, or fewer than 20 rated "
        "answers); empty when it is, or when the judge scored no answer.",
    )


class EvaluationDetailSerializer(EvaluationSerializer):
    judge_agreement = serializers.SerializerMethodField()

    class Meta(EvaluationSerializer.Meta):
        fields = [*EvaluationSerializer.Meta.fields, "judge_agreement"]
        read_only_fields = fields

    @extend_schema_field(JudgeAgreementSerializer)
    def get_judge_agreement(self, evaluation: Evaluation) -> dict:
        return self.context["judge_agreement"]

    def to_representation(self, evaluation: Evaluation) -> dict:
        data = super().to_representation(evaluation)
        if data["verdict"]:  # the stored verdict predates the ratings: the warning is read now, as the page shows it
            data["verdict"] = {**data["verdict"], "judge_warning": self.context["judge_agreement"]["warning"]}
        return data


class EvaluationDetailView(APIView):
    @extend_schema(responses=EvaluationDetailSerializer)
    def get(self, request, slug: str, pk: int):
        evaluation = _evaluation(request, slug, pk)
        agreement = selectors.judge_agreement(evaluation=evaluation)
        return Response(EvaluationDetailSerializer(evaluation, context={"judge_agreement": agreement}).data)


class AnswerRatingSerializer(serializers.ModelSerializer):
    answer = serializers.IntegerField(source="answer_id", help_text="An answer of this evaluation (its `id`).")
    relevance = serializers.IntegerField(min_value=1, max_value=5, help_text="1 (off the point) to 5 (fully answers).")
    unsupported = serializers.BooleanField(help_text="It states something the source does not support.")
    rater = serializers.CharField(source="rater.username", read_only=True)

    class Meta:
        model = AnswerRating
        fields = ["id", "answer", "relevance", "unsupported", "rater", "created_at", "updated_at"]
        read_only_fields = ["id", "rater", "created_at", "updated_at"]


class EvaluationRatingsView(APIView):
    """An expert's (or a lead's) blind rating of one answer of the evaluation; rating it again replaces it."""

    @extend_schema(
        request=AnswerRatingSerializer,
        responses={201: AnswerRatingSerializer, 200: AnswerRatingSerializer},
        description="201 with a new rating, 200 when it replaces the caller's earlier rating of the answer; 404 for "
        "an answer of another evaluation.",
    )
    def post(self, request, slug: str, pk: int):
        evaluation = _evaluation(request, slug, pk)
        serializer = AnswerRatingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        answer = project_object_or_404(
            EvaluationAnswer.objects.filter(evaluation=evaluation), pk=data["answer_id"], name="answer"
        )
        try:
            rating, created = services.answer_rating_save(
                answer=answer, rater=request.user, relevance=data["relevance"], unsupported=data["unsupported"]
            )
        except ServiceError as error:
            raise serializers.ValidationError({error.field or "non_field_errors": [error.message]})
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(AnswerRatingSerializer(rating).data, status=code)


class EvaluationAnswerSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    example = serializers.IntegerField(allow_null=True)
    messages = serializers.ListField(child=serializers.DictField())
    reference = serializers.CharField()
    reference_label = serializers.CharField(allow_blank=True)
    answers = serializers.DictField(
        help_text="system -> {id (what a rating names), answer, format_ok, label, label_ok, relevance, ...}"
    )
    failed = serializers.BooleanField(help_text="The fine-tuned answer failed a check.")


class EvaluationAnswersView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("failures", bool, description="Only examples the fine-tuned model got wrong."),
            OpenApiParameter("offset", int),
            OpenApiParameter("limit", int, description="At most 500."),
        ],
        responses=EvaluationAnswerSerializer(many=True),
    )
    def get(self, request, slug: str, pk: int):
        evaluation = _evaluation(request, slug, pk)
        try:
            offset = max(0, int(request.query_params.get("offset", 0)))
            limit = min(500, max(1, int(request.query_params.get("limit", 100))))
        except ValueError:
            raise serializers.ValidationError({"offset": ["offset and limit are whole numbers."]})
        rows = selectors.evaluation_examples(
            evaluation=evaluation,
            failures_only=request.query_params.get("failures") in ("1", "true"),
            offset=offset,
            limit=limit,
        )
        return Response(EvaluationAnswerSerializer(rows, many=True).data)


class PromptVariantSerializer(serializers.ModelSerializer):
    few_shot = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)

    class Meta:
        model = PromptVariant
        fields = ["id", "name", "system_prompt", "few_shot", "last_score", "created_at", "updated_at"]
        read_only_fields = ["id", "last_score", "created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}


class PromptVariantListView(APIView):
    @extend_schema(responses=PromptVariantSerializer(many=True))
    def get(self, request, slug: str):
        project = curation_selectors.project_get(user=request.user, slug=slug)
        return Response(PromptVariantSerializer(project.prompt_variants.all(), many=True).data)

    @extend_schema(request=PromptVariantSerializer, responses={201: PromptVariantSerializer})
    def post(self, request, slug: str):
        project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
        serializer = PromptVariantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        variant = services.prompt_variant_save(project=project, user=request.user, **serializer.validated_data)
        return Response(PromptVariantSerializer(variant).data, status=status.HTTP_201_CREATED)


class PromptVariantDetailView(APIView):
    def _variant(self, request, slug, pk, lead=False) -> PromptVariant:
        project = curation_selectors.project_get(user=request.user, slug=slug, lead=lead)
        return project_object_or_404(project.prompt_variants.all(), pk=pk, name="prompt variant")

    @extend_schema(responses=PromptVariantSerializer)
    def get(self, request, slug: str, pk: int):
        return Response(PromptVariantSerializer(self._variant(request, slug, pk)).data)

    @extend_schema(request=PromptVariantSerializer, responses=PromptVariantSerializer)
    def put(self, request, slug: str, pk: int):
        variant = self._variant(request, slug, pk, lead=True)
        serializer = PromptVariantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        variant = services.prompt_variant_save(
            project=variant.project, user=request.user, variant=variant, **serializer.validated_data
        )
        return Response(PromptVariantSerializer(variant).data)

    @extend_schema(responses={204: None})
    def delete(self, request, slug: str, pk: int):
        services.prompt_variant_delete(variant=self._variant(request, slug, pk, lead=True))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EvaluationSendToReviewSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="Test items; default: every failure."
    )


class EvaluationSendToReviewView(APIView):
    @extend_schema(request=EvaluationSendToReviewSerializer, responses={200: dict})
    def post(self, request, slug: str, pk: int):
        curation_selectors.project_get(user=request.user, slug=slug, lead=True)
        evaluation = _evaluation(request, slug, pk)
        serializer = EvaluationSendToReviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sent = services.evaluation_send_to_review(
            evaluation=evaluation, user=request.user, item_ids=serializer.validated_data.get("items")
        )
        return Response({"sent": sent, "tag": f"eval-{evaluation.pk}"})


class HistoryVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()


class HistoryMetricSerializer(serializers.Serializer):
    metric = serializers.CharField()
    name = serializers.CharField()
    value = serializers.FloatField(allow_null=True, help_text="The fine-tuned model's value.")
    previous = serializers.FloatField(allow_null=True, help_text="Its value in the finished evaluation before.")


class HistoryPreviousEvaluationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    outcome = serializers.CharField(allow_blank=True)
    outcome_name = serializers.CharField(allow_blank=True)
    dataset_version = HistoryVersionSerializer()


class HistoryEntrySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["version", "run", "evaluation"])
    id = serializers.IntegerField(help_text="The version's, run's or evaluation's id.")
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_null=True)
    status = serializers.CharField(help_text="frozen for a version; the run's or evaluation's status.")
    dataset_version = HistoryVersionSerializer(help_text="The version itself, or the one trained or evaluated on.")
    examples = serializers.IntegerField(allow_null=True, help_text="Versions: examples frozen.")
    previous_version = HistoryVersionSerializer(
        allow_null=True, help_text="Versions: the one before (its diff: dataset-versions/<id>/diff/?against=<id>)."
    )
    base_model = serializers.CharField(allow_blank=True, help_text="Runs.")
    method = serializers.CharField(allow_blank=True, help_text="Runs.")
    training_run = serializers.IntegerField(allow_null=True, help_text="Evaluations: the run evaluated.")
    outcome = serializers.CharField(
        allow_blank=True, help_text="Finished evaluations: beats_all | loses | inconclusive | no_signal."
    )
    outcome_name = serializers.CharField(allow_blank=True)
    summary = serializers.CharField(allow_blank=True, help_text="Finished evaluations: the verdict in words.")
    metrics = HistoryMetricSerializer(many=True, help_text="Evaluations: each primary metric of the fine-tuned model.")
    previous_evaluation = HistoryPreviousEvaluationSerializer(
        allow_null=True, help_text="Evaluations: the finished evaluation before this one."
    )
    verdict_moved = serializers.BooleanField(help_text="The outcome differs from the previous evaluation's.")

    def to_representation(self, entry: dict) -> dict:
        data = super().to_representation(entry)
        data["base_model"] = server_paths.redact(data["base_model"])
        return data


class ProjectHistoryView(APIView):
    """Dataset versions, training runs and evaluations on one time line, newest first: which version each run trained
    on, each evaluation's verdict and primary metrics beside the evaluation before it."""

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="Entries (default 100, at most 500).")],
        responses=HistoryEntrySerializer(many=True),
    )
    def get(self, request, slug: str):
        project = curation_selectors.project_get(user=request.user, slug=slug)
        try:
            limit = int(request.query_params.get("limit", selectors.HISTORY_LIMIT))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 500:
            raise serializers.ValidationError({"limit": ["A whole number from 1 to 500."]})
        entries = selectors.project_history(project=project, limit=limit)
        return Response(HistoryEntrySerializer(entries, many=True).data)


class GenerationJobSerializer(serializers.ModelSerializer):
    training_run = serializers.IntegerField(source="training_run_id", allow_null=True)
    created_by = serializers.CharField(source="created_by.username", default=None)
    progress = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="Where to poll the job.")
    report = serializers.JSONField(
        read_only=True,
        help_text="When it succeeded: requested, written, rejected_format, rejected_duplicate, errors, examples (the "
        "ids written, pending, tagged `generated`), rejections [{candidate, kind (format | duplicate | error), reason, "
        "excerpt}] (the first 50), seconds, per_second.",
    )

    class Meta:
        model = GenerationJob
        fields = [
            "id",
            "url",
            "status",
            "label",
            "count",
            "source",
            "training_run",
            "model",
            "prompt",
            "created_by",
            "progress",
            "report",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, job: GenerationJob) -> dict:
        return {"done": job.done, "total": job.count, "stage": job.stage}

    def get_url(self, job: GenerationJob) -> str:
        return reverse("generation-detail", kwargs={"slug": job.project.slug, "pk": job.pk})

    def to_representation(self, job: GenerationJob) -> dict:
        data = super().to_representation(job)
        data["error"], data["report"] = server_paths.redact(data["error"]), server_paths.redact_all(data["report"])
        return data


class GenerationCreateSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="A label of the project (one the readiness check says lacks examples).")
    count = serializers.IntegerField(help_text="Candidates to ask for: 1 to FINELINE_GENERATION_MAX_COUNT (100).")
    source = serializers.ChoiceField(
        choices=GenerationJob.Source.values,
        help_text="frontier (FINELINE_FRONTIER_BASE_URL), fine_tuned (a finished run's fine-tune) or base_few_shot "
        "(that run's base model, with seed examples of the label as few-shot examples).",
    )
    training_run = serializers.IntegerField(
        required=False, help_text="For the local sources: a succeeded run of the project (default: the latest)."
    )


class GenerationListView(APIView):
    @extend_schema(responses=GenerationJobSerializer(many=True))
    def get(self, request, slug: str):
        project = curation_selectors.project_get(user=request.user, slug=slug)
        jobs = selectors.generation_job_list(project=project)[:50]
        return Response(GenerationJobSerializer(jobs, many=True).data)

    @extend_schema(request=GenerationCreateSerializer, responses={202: GenerationJobSerializer})
    def post(self, request, slug: str):
        project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
        serializer = GenerationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = None
        if "training_run" in data:
            run = TrainingRun.objects.filter(project=project, pk=data["training_run"]).first()
            if run is None:
                raise serializers.ValidationError({"training_run": ["No such training run in this project."]})
        job = generation.generation_job_create(
            project=project,
            user=request.user,
            label=data["label"],
            count=data["count"],
            source=data["source"],
            training_run=run,
        )
        body = GenerationJobSerializer(job).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class GenerationDetailView(APIView):
    @extend_schema(responses=GenerationJobSerializer)
    def get(self, request, slug: str, pk: int):
        project = curation_selectors.project_get(user=request.user, slug=slug)
        job = project_object_or_404(selectors.generation_job_list(project=project), pk=pk, name="generation job")
        return Response(GenerationJobSerializer(job).data)
