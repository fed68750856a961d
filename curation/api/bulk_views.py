"""Bulk actions of a project lead over the API: one action on many examples, in one transaction, with the counts."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import bulk, selectors
from .serializers import BulkActionSerializer, BulkResultSerializer


class ExampleBulkView(APIView):
    """Leads: approve, reject, set a label, add a tag or send back to review the examples picked by `ids` or by a
    `filter` (the example list's filters). Recorded as the lead's reviews and revisions; examples an expert is
    reviewing right now are skipped. Every changed example gets a new version, so an open editor gets a 409."""

    @extend_schema(request=BulkActionSerializer, responses={200: BulkResultSerializer})
    def post(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, lead=True)
        serializer = BulkActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        filters = None
        if "filter" in data:
            filters = {key: value if isinstance(value, bool) else str(value) for key, value in data["filter"].items()}
        result = bulk.examples_bulk(
            project=project,
            user=request.user,
            action=data["action"],
            ids=data.get("ids"),
            filters=filters,
            label=data.get("label", ""),
            tag=data.get("tag", ""),
            comment=data.get("comment", ""),
        )
        return Response({"action": data["action"], **result})
