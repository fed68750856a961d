"""Every API route, under /api/v1/, and the API's error handling."""

from django.urls import path
from rest_framework import status
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ServiceError
from curation.api import bulk_views
from curation.api import quality_views as quality
from curation.api import views as curation
from evaluation import api as evaluation
from training import api as training

from . import tokens

router = DefaultRouter()
router.register("projects", curation.ProjectViewSet, basename="project")

examples = curation.ExampleViewSet.as_view({"get": "list"})
example = curation.ExampleViewSet.as_view({"get": "retrieve", "patch": "partial_update"})

urlpatterns = [
    *router.urls,
    path("auth/token/", tokens.TokenCreateView.as_view(), name="token-create"),
    path("auth/token/current/", tokens.TokenRevokeView.as_view(), name="token-revoke"),
    path("projects/<slug:slug>/members/", curation.MemberView.as_view(), name="project-members"),
    path("projects/<slug:slug>/examples/", examples, name="example-list"),
    path("projects/<slug:slug>/examples/bulk/", bulk_views.ExampleBulkView.as_view(), name="example-bulk"),
    path("projects/<slug:slug>/examples/<int:pk>/", example, name="example-detail"),
    path("projects/<slug:slug>/imports/", curation.ImportView.as_view(), name="import-list"),
    path("projects/<slug:slug>/imports/preview/", curation.ImportPreviewView.as_view(), name="import-preview"),
    path("projects/<slug:slug>/imports/<int:pk>/", curation.ImportDetailView.as_view(), name="import-detail"),
    path("projects/<slug:slug>/imports/<int:pk>/errors/", curation.ImportErrorsView.as_view(), name="import-errors"),
    path("projects/<slug:slug>/export/", curation.ExportView.as_view(), name="export"),
    path("projects/<slug:slug>/readiness/", quality.ReadinessView.as_view(), name="readiness"),
    path("projects/<slug:slug>/stats/", quality.StatsView.as_view(), name="stats"),
    path("projects/<slug:slug>/quality-scans/", quality.QualityScanView.as_view(), name="quality-scans"),
    path("projects/<slug:slug>/duplicates/", quality.DuplicateListView.as_view(), name="duplicates"),
    path(
        "projects/<slug:slug>/duplicates/<int:cluster_id>/resolve/",
        quality.DuplicateResolveView.as_view(),
        name="duplicate-resolve",
    ),
    path("projects/<slug:slug>/dataset-versions/", quality.DatasetVersionListView.as_view(), name="dataset-versions"),
    path(
        "projects/<slug:slug>/dataset-versions/<int:pk>/",
        quality.DatasetVersionDetailView.as_view(),
        name="dataset-version-detail",
    ),
    path(
        "projects/<slug:slug>/dataset-versions/<int:pk>/diff/",
        quality.DatasetVersionDiffView.as_view(),
        name="dataset-version-diff",
    ),
    path(
        "projects/<slug:slug>/dataset-versions/<int:pk>/export/",
        quality.DatasetVersionExportView.as_view(),
        name="dataset-version-export",
    ),
    path("projects/<slug:slug>/training-runs/", training.TrainingRunListView.as_view(), name="training-runs"),
    path(
        "projects/<slug:slug>/training-runs/preflight/",
        training.TrainingRunPreflightView.as_view(),
        name="training-run-preflight",
    ),
    path(
        "projects/<slug:slug>/training-runs/<int:pk>/",
        training.TrainingRunDetailView.as_view(),
        name="training-run-detail",
    ),
    path(
        "projects/<slug:slug>/training-runs/<int:pk>/cancel/",
        training.TrainingRunCancelView.as_view(),
        name="training-run-cancel",
    ),
    path(
        "projects/<slug:slug>/training-runs/<int:pk>/merge/",
        training.TrainingRunMergeView.as_view(),
        name="training-run-merge",
    ),
    path(
        "projects/<slug:slug>/training-runs/<int:pk>/artifacts/<slug:name>/",
        training.TrainingRunArtifactView.as_view(),
        name="training-run-artifact",
    ),
    path("projects/<slug:slug>/generate/", evaluation.GenerationListView.as_view(), name="generations"),
    path(
        "projects/<slug:slug>/generate/<int:pk>/", evaluation.GenerationDetailView.as_view(), name="generation-detail"
    ),
    path(
        "projects/<slug:slug>/training-runs/<int:pk>/chat/",
        training.TrainingRunChatView.as_view(),
        name="training-run-chat",
    ),
    path(
        "projects/<slug:slug>/training-runs/<int:pk>/chat/<int:reply>/",
        training.TrainingRunChatDetailView.as_view(),
        name="training-run-chat-detail",
    ),
    path("projects/<slug:slug>/evaluations/", evaluation.EvaluationListView.as_view(), name="evaluations"),
    path(
        "projects/<slug:slug>/evaluations/<int:pk>/",
        evaluation.EvaluationDetailView.as_view(),
        name="evaluation-detail",
    ),
    path(
        "projects/<slug:slug>/evaluations/<int:pk>/answers/",
        evaluation.EvaluationAnswersView.as_view(),
        name="evaluation-answers",
    ),
    path(
        "projects/<slug:slug>/evaluations/<int:pk>/ratings/",
        evaluation.EvaluationRatingsView.as_view(),
        name="evaluation-ratings",
    ),
    path(
        "projects/<slug:slug>/evaluations/<int:pk>/send-to-review/",
        evaluation.EvaluationSendToReviewView.as_view(),
        name="evaluation-send-to-review",
    ),
    path("projects/<slug:slug>/history/", evaluation.ProjectHistoryView.as_view(), name="project-history"),
    path("projects/<slug:slug>/prompt-variants/", evaluation.PromptVariantListView.as_view(), name="prompt-variants"),
    path(
        "projects/<slug:slug>/prompt-variants/<int:pk>/",
        evaluation.PromptVariantDetailView.as_view(),
        name="prompt-variant-detail",
    ),
]


def exception_handler(exc, context):
    """DRF's handler, plus business-rule errors from services as 400 with the field at fault."""
    if isinstance(exc, ServiceError):
        body = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
