"""Data quality endpoints: dashboard numbers, the readiness verdict, quality scans, duplicates, dataset versions."""

import tempfile
import zipfile
from pathlib import Path

from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.lookups import project_object_or_404
from core.params import form_int

from .. import selectors, services
from ..models import DatasetVersion, DatasetVersionItem
from .serializers import (
    DatasetVersionCreateSerializer,
    DatasetVersionDiffSerializer,
    DatasetVersionSerializer,
    DuplicateClusterPageSerializer,
    DuplicateResolveSerializer,
    QualityScanSerializer,
    ReadinessSerializer,
)
from .views import export_stream


class ReadinessView(APIView):
    """Is the data good enough to fine-tune on? Each check with its threshold, and advice."""

    @extend_schema(responses=ReadinessSerializer)
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        return Response(selectors.readiness(project=project))


class StatsView(APIView):
    """The dataset dashboard's numbers: status counts, labels and deficits, token lengths, the last scan."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        stats = selectors.dashboard_stats(project=project)
        stats["scan"] = QualityScanSerializer(stats["scan"]).data if stats["scan"] else None
        return Response(stats)


class QualityScanView(APIView):
    """Quality scans (near duplicates, format conformance, token lengths); leads start one."""

    @extend_schema(responses=QualityScanSerializer(many=True))
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        return Response(QualityScanSerializer(project.quality_scans.all()[:20], many=True).data)

    @extend_schema(
        request=inline_serializer("QualityScanStart", {"threshold": serializers.FloatField(required=False)}),
        responses={202: QualityScanSerializer},
    )
    def post(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, lead=True)
        if not isinstance(request.data, dict):
            raise ParseError('The body is a JSON object: {"threshold": 0.85} or {}.')
        threshold = request.data.get("threshold")
        if threshold is not None and not isinstance(threshold, (int, float)):
            raise ValidationError({"threshold": ["A number between 0.5 and 1."]})
        scan = services.quality_scan_start(project=project, threshold=threshold)
        return Response(QualityScanSerializer(scan).data, status=status.HTTP_202_ACCEPTED)


class DuplicatePagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class DuplicateListView(APIView):
    """Clusters of exact or near-duplicate examples, two or more of them not rejected (pending ones count: resolve a
    cluster before anyone reviews it twice), largest first, a page at a time with the total. The same count as the
    dashboard's and the readiness verdict's."""

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description="Clusters per page (default 50, at most 500)."),
            OpenApiParameter("offset", int, description="Clusters to skip."),
        ],
        responses=DuplicateClusterPageSerializer,
    )
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        paginator = DuplicatePagination()
        rows = paginator.paginate_queryset(selectors.duplicate_clusters(project=project), request, view=self)
        members = selectors.duplicate_cluster_members(project=project, cluster_ids=[r["cluster_id"] for r in rows])
        results = [
            {
                "cluster_id": row["cluster_id"],
                "size": row["size"],
                "examples": [
                    {"id": e.pk, "status": e.status, "label": e.label, "messages": e.messages}
                    for e in members[row["cluster_id"]]
                ],
            }
            for row in rows
        ]
        totals = selectors.duplicate_cluster_totals(project=project)
        return Response(
            {
                "count": paginator.count,
                "examples": totals["examples"],
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "results": results,
            }
        )


class DuplicateResolveView(APIView):
    """Keep one example of a cluster; the others are rejected (kept in history, never deleted)."""

    @extend_schema(
        request=DuplicateResolveSerializer,
        responses=inline_serializer("DuplicateResolved", {"rejected": serializers.IntegerField()}),
    )
    def post(self, request, slug: str, cluster_id: int):
        project = selectors.project_get(user=request.user, slug=slug, lead=True)
        serializer = DuplicateResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rejected = services.duplicates_resolve(
            project=project, cluster_id=cluster_id, keep_id=serializer.validated_data["keep"], user=request.user
        )
        return Response({"rejected": rejected})


class DatasetVersionListView(APIView):
    """Frozen dataset versions; leads freeze a new one (approved examples, stratified, 80/10/10 by default)."""

    @extend_schema(responses=DatasetVersionSerializer(many=True))
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        versions = DatasetVersion.objects.filter(project=project).select_related("created_by")
        return Response(DatasetVersionSerializer(versions, many=True).data)

    @extend_schema(request=DatasetVersionCreateSerializer, responses={201: DatasetVersionSerializer})
    def post(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, lead=True)
        serializer = DatasetVersionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.dataset_version_freeze(project=project, user=request.user, **serializer.validated_data)
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_201_CREATED)


def _version(request, slug: str, pk: int) -> DatasetVersion:
    project = selectors.project_get(user=request.user, slug=slug)
    versions = DatasetVersion.objects.filter(project=project).select_related("created_by")
    return project_object_or_404(versions, pk=pk, name="dataset version")


class DatasetVersionDetailView(APIView):
    @extend_schema(responses=DatasetVersionSerializer)
    def get(self, request, slug: str, pk: int):
        return Response(DatasetVersionSerializer(_version(request, slug, pk)).data)


class DatasetVersionDiffView(APIView):
    """What changed from the version `against` to this one: examples added, removed, edited, relabelled and moved
    between splits, examples per label and split before and after, and a page of each kind of change."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "against",
                int,
                required=True,
                description="The id of the version to compare with (before), as in the path: another version of the "
                "same project (its `id` in the versions' list, not its number).",
            ),
            OpenApiParameter("kind", str, enum=selectors.DIFF_KINDS, description="List this kind of change alone."),
            OpenApiParameter("offset", int, description="Entries of each list to skip (default 0)."),
            OpenApiParameter(
                "limit", int, description=f"Entries per list (default {selectors.DIFF_PAGE}, at most 500)."
            ),
        ],
        responses=DatasetVersionDiffSerializer,
    )
    def get(self, request, slug: str, pk: int):
        version = _version(request, slug, pk)
        against_id = form_int(request.query_params.get("against"))
        against = (
            DatasetVersion.objects.filter(project=version.project, pk=against_id).first()
            if against_id is not None
            else None
        )
        if against is None:
            raise ValidationError({"against": ["The id of another dataset version of this project."]})
        kind = request.query_params.get("kind", "")
        if kind and kind not in selectors.DIFF_KINDS:
            raise ValidationError({"kind": [f"One of {', '.join(selectors.DIFF_KINDS)}."]})
        offset = form_int(request.query_params.get("offset") or "0")
        limit = form_int(request.query_params.get("limit") or str(selectors.DIFF_PAGE))
        if offset is None or limit is None or not 1 <= limit <= selectors.DIFF_PAGE_MAX:
            raise ValidationError({"limit": ["offset is a whole number; limit one from 1 to 500."]})
        diff = selectors.dataset_version_diff(version=version, against=against, kind=kind, offset=offset, limit=limit)
        return Response(DatasetVersionDiffSerializer(diff).data)


class DatasetVersionExportView(APIView):
    """One split of a frozen version as JSONL in the OpenAI chat format, exactly as it was frozen."""

    @extend_schema(
        parameters=[
            OpenApiParameter("split", str, enum=DatasetVersionItem.Split.values, description="Required for JSONL."),
            OpenApiParameter("messages_only", bool, description="Only `messages` on each line."),
            OpenApiParameter(
                "format",
                str,
                enum=["jsonl", "hf"],
                description="hf: a zipped datasets folder, all splits.",
            ),
        ],
        responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY, (200, "application/zip"): OpenApiTypes.BINARY},
    )
    def get(self, request, slug: str, pk: int):
        version = _version(request, slug, pk)
        if request.query_params.get("format") == "hf":
            return _hf_zip(version)
        split = request.query_params.get("split", "")
        if split not in DatasetVersionItem.Split.values:
            raise ValidationError({"split": ["Must be one of train, val, test."]})
        messages_only = request.query_params.get("messages_only", "").lower() in {"1", "true", "yes"}
        lines = selectors.version_export_lines(version=version, split=split, messages_only=messages_only)
        response = StreamingHttpResponse(export_stream(lines), content_type="application/x-ndjson")
        name = f"{version.project.slug}-v{version.number}-{split}.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def _hf_zip(version: DatasetVersion) -> FileResponse:
    """The version as a zipped `datasets` folder (load_from_disk after unzipping), built in a temporary file."""
    name = f"{version.project.slug}-v{version.number}"
    with tempfile.TemporaryDirectory() as work:
        folder = services.dataset_version_save_hf(version=version, path=Path(work) / name)
        archive = tempfile.TemporaryFile()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    bundle.write(file, Path(name) / file.relative_to(folder))
    archive.seek(0)
    return FileResponse(archive, as_attachment=True, filename=f"{name}.zip", content_type="application/zip")
