"""Curation endpoints: projects, members, examples, imports and exports. Each validates, calls a service, answers."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.lookups import project_object_or_404
from core.parsers import JSONParser

from .. import formats, selectors, services
from ..models import Example, ImportJob, Project, ReviewStatus
from .serializers import (
    ExampleConflictSerializer,
    ExampleSerializer,
    ExampleUpdateSerializer,
    ImportJobSerializer,
    ImportPreviewSerializer,
    MemberSerializer,
    ProjectSerializer,
    ProjectUpdateSerializer,
)

logger = logging.getLogger(__name__)


class ProjectViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Projects you are a member of. The creator of a project becomes its lead; only leads change it. Who may create
    one is a setting (FINELINE_PROJECT_CREATORS: staff by default)."""

    serializer_class = ProjectSerializer
    lookup_field = "slug"
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Project.objects.none()
        return selectors.project_list(user=self.request.user)

    def get_object(self):
        return selectors.project_get(user=self.request.user, slug=self.kwargs["slug"])

    def list(self, request):
        projects = list(self.get_queryset())
        roles = dict(request.user.memberships.values_list("project_id", "role"))
        for project in projects:
            project.user_role = "lead" if request.user.is_superuser else roles.get(project.pk)
        return Response(ProjectSerializer(projects, many=True).data)

    def create(self, request):
        if not selectors.project_create_allowed(user=request.user):
            raise PermissionDenied("Only staff create projects here; ask an administrator for one.")
        serializer = ProjectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        project = services.project_create(creator=request.user, name=data.pop("name"), slug=data.pop("slug"), **data)
        project.user_role = "lead"
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ProjectUpdateSerializer, responses=ProjectSerializer)
    def partial_update(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, lead=True)
        serializer = ProjectUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        project = services.project_update(project=project, **serializer.validated_data)
        return Response(ProjectSerializer(project).data)


class MemberView(APIView):
    """The members of a project and their roles; leads add members or change roles."""

    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        members = project.memberships.select_related("user").order_by("user__username")
        return Response(MemberSerializer(members, many=True).data)

    @extend_schema(request=MemberSerializer, responses={200: MemberSerializer})
    def post(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, lead=True)
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=serializer.validated_data["user"]["username"]).first()
        if user is None:
            raise ValidationError({"username": ["No such user."]})
        membership = services.membership_set(project=project, user=user, role=serializer.validated_data["role"])
        return Response(MemberSerializer(membership).data)


class ExamplePagination(CursorPagination):
    ordering = "id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


FILTER_PARAMETERS = [
    OpenApiParameter("status", str, enum=ReviewStatus.values, description="Review status."),
    OpenApiParameter("label", str, description="Label, e.g. P1."),
    OpenApiParameter("tag", str, description="A tag the example carries, e.g. edge_case."),
]


def example_filters(params) -> dict[str, str]:
    filters = {key: params.get(key, "").strip() for key in ("status", "label", "tag", "q")}
    if filters["status"] and filters["status"] not in ReviewStatus.values:
        raise ValidationError({"status": [f"Must be one of {', '.join(ReviewStatus.values)}."]})
    return filters


class ExampleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A project's examples. PATCH must carry the `version` it read: a stale version gets 409 and the current state."""

    serializer_class = ExampleSerializer
    pagination_class = ExamplePagination

    def get_project(self):
        return selectors.project_get(user=self.request.user, slug=self.kwargs["slug"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Example.objects.none()
        return selectors.example_list(project=self.get_project(), **example_filters(self.request.query_params))

    def get_object(self):
        return selectors.example_get(project=self.get_project(), example_id=self.kwargs["pk"])

    @extend_schema(parameters=[*FILTER_PARAMETERS, OpenApiParameter("q", str, description="Words in any message.")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=ExampleUpdateSerializer,
        responses={200: ExampleSerializer, 409: OpenApiResponse(ExampleConflictSerializer, "Stale version.")},
    )
    def partial_update(self, request, slug: str, pk: int):
        example = self.get_object()
        serializer = ExampleUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        version = changes.pop("version")
        comment = changes.pop("comment", "")
        try:
            example = services.example_update(
                example=example, user=request.user, version=version, changes=changes, comment=comment
            )
        except services.VersionConflict as conflict:
            body = {
                "detail": f"Example #{example.pk} changed since version {version}; it is now at version "
                f"{conflict.current.version}. Nothing was overwritten.",
                "current": ExampleSerializer(conflict.current).data,
            }
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(ExampleSerializer(example).data)


class JSONLinesParser(BaseParser):
    """Declares the JSONL media types; the import view streams the body itself instead of parsing it here."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):  # pragma: no cover - never called
        raise NotImplementedError


class JSONLParser(JSONLinesParser):
    media_type = "application/jsonl"


class CSVParser(JSONLinesParser):
    media_type = "text/csv"


class ParquetParser(JSONLinesParser):
    media_type = "application/vnd.apache.parquet"


class XParquetParser(JSONLinesParser):
    media_type = "application/x-parquet"


JSONL_TYPES = formats.JSONL_TYPES
IMPORT_PARSERS = [JSONLinesParser, JSONLParser, CSVParser, ParquetParser, XParquetParser, JSONParser, MultiPartParser]
IMPORT_BODIES = {
    "application/x-ndjson": OpenApiTypes.BINARY,
    "application/jsonl": OpenApiTypes.BINARY,
    "text/csv": OpenApiTypes.BINARY,
    "application/vnd.apache.parquet": OpenApiTypes.BINARY,
    "application/json": {"type": "array", "items": {"type": "object"}},
    "multipart/form-data": inline_serializer("ImportUpload", {"file": serializers.FileField()}),
}
IMPORT_PARAMETERS = [
    OpenApiParameter(
        "format",
        str,
        enum=[*formats.FORMATS, *formats.FILE_FORMATS],
        description="auto (default) detects the shape per line; csv or parquet read the body (or file) as such"
        " whatever its content type.",
    ),
    OpenApiParameter(
        "mapping",
        str,
        description='A column mapping (JSON) for rows in another shape, e.g. {"system": "sys", "user": ["instruction",'
        ' "context"], "assistant": "response", "label": "category", "metadata": ["source"]}. Several user keys are'
        " joined with a blank line, empty ones skipped; keys it does not name are ignored (and counted).",
    ),
]


def _payload_too_large(limit: int) -> Response:
    return Response(
        {"detail": f"The request body is over the import limit of {limit} bytes.", "code": "body_too_large"},
        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


def _unsupported_type(content_type: str) -> Response:
    return Response(
        {
            "detail": f"Unsupported content type {content_type!r}; send application/x-ndjson, application/jsonl,"
            " application/json, text/csv, application/vnd.apache.parquet or a multipart `file`.",
            "code": "unsupported_media_type",
        },
        status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    )


class _UnsupportedType(Exception):
    pass


class _EmptyBody(Exception):
    pass


def _empty_body(message: str) -> Response:
    return Response({"detail": message, "code": "empty_body"}, status=status.HTTP_400_BAD_REQUEST)


def _import_options(params) -> tuple[str, formats.ColumnMapping | None]:
    """`format` and `mapping` from the query, checked before any of the body is read."""
    fmt = params.get("format", "auto")
    if fmt not in formats.FORMATS + formats.FILE_FORMATS:
        raise ValidationError({"format": [f"Must be one of {', '.join(formats.FORMATS + formats.FILE_FORMATS)}."]})
    mapping = None
    if "mapping" in params:
        try:
            mapping = formats.mapping_parse(params["mapping"])
        except formats.MappingError as error:
            raise ValidationError({"mapping": [str(error)]}) from None
        if fmt not in ("auto", *formats.FILE_FORMATS):
            raise ValidationError({"mapping": [f"A mapping replaces `format={fmt}`; send one or the other."]})
    return fmt, mapping


def _import_input(request, *, fmt: str):
    """(kind, stream, source) of an import request: a multipart `file`, or the body itself."""
    content_type = request.content_type.split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["Send the examples as a multipart field named `file`."]})
        if not upload.size:
            raise _EmptyBody("The uploaded file is empty: it holds no examples to import.")
        stream = upload.open("rb")
        head = stream.read(64)
        stream.seek(0)
        kind = formats.file_kind(requested=fmt, name=upload.name, content_type=upload.content_type or "", head=head)
        # Parquet seeks to its index at the end: hand it the underlying (seekable) file, not Django's wrapper.
        return kind, upload.file if kind == "parquet" else stream, f"file:{upload.name}"[:200]
    if not _content_length(request):
        # A chunked body has its length by now (config.middleware.ReadChunkedBodies), so this one is really empty.
        raise _EmptyBody(
            "The request body is empty: send the examples in it (JSONL, a JSON array, CSV or Parquet) or as a"
            " multipart `file`."
        )
    kind = formats.body_kind(requested=fmt, content_type=content_type)
    if kind is None:
        raise _UnsupportedType(content_type)
    return kind, request._request, "api"


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _content_length_over(request, limit: int) -> bool:
    return _content_length(request) > limit


class ImportView(APIView):
    """Bulk import (leads): JSONL, a JSON array, CSV, Parquet or a multipart `file`; a line-numbered report either
    way. Rows in another shape come in through `mapping`. A body over FINELINE_IMPORT_SYNC_MAX_BYTES is queued for a
    worker: 202 with the job, whose detail (`url`, the Location header) gives its progress, then its report."""

    parser_classes = IMPORT_PARSERS

    @extend_schema(responses=ImportJobSerializer(many=True))
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        jobs = selectors.import_job_list(project=project)[:100]
        return Response(ImportJobSerializer(jobs, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("mode", str, enum=ImportJob.Mode.values, description="atomic (default) or partial."),
            *IMPORT_PARAMETERS,
            OpenApiParameter(
                "Location",
                str,
                OpenApiParameter.HEADER,
                response=[202],
                description="The queued import's detail (its `url`).",
            ),
        ],
        request=IMPORT_BODIES,
        responses={
            201: OpenApiResponse(ImportJobSerializer, "succeeded, or partial (some lines rejected, the rest kept)."),
            202: OpenApiResponse(
                ImportJobSerializer,
                "A body over FINELINE_IMPORT_SYNC_MAX_BYTES, queued for a worker (status `queued`): poll its `url`"
                " (also in the Location header) until it is succeeded, partial or failed, with the report a 201/400"
                " has.",
            ),
            400: OpenApiResponse(
                {
                    "anyOf": [
                        {"$ref": "#/components/schemas/ImportJob"},
                        {"$ref": "#/components/schemas/Error"},
                    ]
                },
                "failed (the report; nothing written): an error in atomic mode, every line rejected, or no line at"
                " all. Or a request with an empty body or file, or none, or a bad `mode`, `format` or `mapping`.",
            ),
            411: OpenApiResponse(description="A chunked body this server cannot read: send a Content-Length."),
            413: OpenApiResponse(description="Body over the import limit."),
            415: OpenApiResponse(description="Unsupported content type."),
            503: OpenApiResponse(ImportJobSerializer, "A large body that could not be queued (its `error` says why)."),
        },
    )
    def post(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, lead=True)
        mode = request.query_params.get("mode", ImportJob.Mode.ATOMIC)
        if mode not in ImportJob.Mode.values:
            raise ValidationError({"mode": [f"Must be one of {', '.join(ImportJob.Mode.values)}."]})
        fmt, mapping = _import_options(request.query_params)
        limit = settings.FINELINE_IMPORT_MAX_BODY_BYTES
        if _content_length_over(request, limit):
            return _payload_too_large(limit)
        try:
            kind, stream, source = _import_input(request, fmt=fmt)
        except _UnsupportedType as error:
            return _unsupported_type(str(error))
        except _EmptyBody as error:
            return _empty_body(str(error))
        job_format = kind if kind in formats.FILE_FORMATS else fmt
        if _content_length_over(request, settings.FINELINE_IMPORT_SYNC_MAX_BYTES):
            return self._queue(request, project, stream, kind=kind, fmt=job_format, mode=mode, source=source,
                               mapping=mapping)  # fmt: skip
        options = {"fmt": fmt, "labels": project.labels, "limits": services.import_limits(), "mapping": mapping}
        records = formats.read_input(kind, stream, max_body_bytes=limit, **options)
        try:
            job = services.import_examples(
                project=project,
                user=request.user,
                records=records,
                fmt=job_format,
                mode=mode,
                source=source,
                mapping=mapping,
            )
        except formats.BodyTooLarge:
            return _payload_too_large(limit)
        kept = job.status in (ImportJob.Status.SUCCEEDED, ImportJob.Status.PARTIAL)
        return Response(ImportJobSerializer(job).data, status=status.HTTP_201_CREATED if kept else 400)

    def _queue(self, request, project, stream, **options) -> Response:
        """A large body: spooled for a worker, answered at once."""
        try:
            job = services.import_job_queue(project=project, user=request.user, stream=stream, **options)
        except formats.BodyTooLarge:
            return _payload_too_large(settings.FINELINE_IMPORT_MAX_BODY_BYTES)
        data = ImportJobSerializer(job).data
        queued = job.status == ImportJob.Status.QUEUED  # else failed: the broker would not take it
        return Response(data, status=status.HTTP_202_ACCEPTED if queued else 503, headers={"Location": data["url"]})


class ImportPreviewView(APIView):
    """What an import would make of a body's first rows, writing nothing: the keys they carry, a mapping suggested
    from them, and the first five rows as examples or errors (under `mapping`, else the suggested one)."""

    parser_classes = IMPORT_PARSERS

    @extend_schema(
        parameters=IMPORT_PARAMETERS,
        request=IMPORT_BODIES,
        responses={
            200: ImportPreviewSerializer,
            411: OpenApiResponse(description="A chunked body this server cannot read: send a Content-Length."),
            413: OpenApiResponse(description="Body over the import limit."),
            415: OpenApiResponse(description="Unsupported content type."),
        },
    )
    def post(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, lead=True)
        fmt, mapping = _import_options(request.query_params)
        limit = settings.FINELINE_IMPORT_MAX_BODY_BYTES
        if _content_length_over(request, limit):
            return _payload_too_large(limit)
        limits = services.import_limits()
        try:
            kind, stream, _ = _import_input(request, fmt=fmt)
            rows = formats.read_rows(kind, stream, limits=limits, max_body_bytes=limit)
            preview = formats.import_preview(
                rows, kind=kind, fmt=fmt, labels=project.labels, limits=limits, mapping=mapping
            )
        except _UnsupportedType as error:
            return _unsupported_type(str(error))
        except _EmptyBody as error:
            return _empty_body(str(error))
        except formats.BodyTooLarge:
            return _payload_too_large(limit)
        return Response(ImportPreviewSerializer({"format": kind, **preview}).data)


class ImportDetailView(APIView):
    """One import: its status, its progress while a worker runs it (total_lines, read_bytes of size_bytes), then
    its counts and error report."""

    @extend_schema(responses=ImportJobSerializer)
    def get(self, request, slug: str, pk: int):
        project = selectors.project_get(user=request.user, slug=slug)
        job = project_object_or_404(selectors.import_job_list(project=project), pk=pk, name="import")
        return Response(ImportJobSerializer(job).data)


def export_stream(lines: Iterator[bytes]) -> Iterator[bytes]:
    """An HTTP export's body: on an ExportError, a last line says so, then the stream breaks off (a chunked
    response ends without its final chunk, so clients report the transfer as incomplete)."""
    try:
        yield from lines
    except selectors.ExportError as error:
        logger.error("export failed: %s", error)
        yield orjson.dumps({"error": str(error)}) + b"\n"
        raise


class ExportView(APIView):
    """Stream examples as JSONL in the OpenAI chat format; every example when no filter is given."""

    @extend_schema(
        parameters=[
            *FILTER_PARAMETERS,
            OpenApiParameter("messages_only", bool, description="Only `messages` on each line (OpenAI upload format)."),
        ],
        responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY},
    )
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        filters = example_filters(request.query_params)
        messages_only = request.query_params.get("messages_only", "").lower() in {"1", "true", "yes"}
        examples = selectors.example_list(project=project, **filters)
        lines = selectors.example_export_lines(examples=examples, messages_only=messages_only)
        response = StreamingHttpResponse(export_stream(lines), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{project.slug}.jsonl"'
        return response


class ImportErrorsView(APIView):
    """An import's error report as CSV (line, code, message), to fix the file with."""

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    def get(self, request, slug: str, pk: int):
        project = selectors.project_get(user=request.user, slug=slug)
        job = project_object_or_404(selectors.import_job_list(project=project), pk=pk, name="import")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["line", "code", "message"])
        for error in job.errors:
            writer.writerow([error["line"], error["code"], error["message"]])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
        return response
