"""The upload form's preview: what an import would make of a file's first rows, and the mapping it suggests."""

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_POST

from .. import formats, selectors, services

PREVIEW_TEXT_CHARS = 300


@login_required
@require_POST
def import_preview(request, slug: str):
    """The upload form's preview: the first rows of the chosen file (the browser sends its first megabyte; a Parquet
    file whole) as they would import, with a mapping suggested from their keys when they are in another shape."""
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    template = "curation/htmx/import_preview.html"
    upload = request.FILES.get("file")
    mapping_text = request.POST.get("mapping", "").strip()
    context = {"project": project, "name": upload.name if upload else "", "mapping_text": mapping_text}
    if upload is None:
        return render(request, template, {**context, "problem": "Choose a file to preview."}, status=400)
    mapping = None
    if mapping_text:
        try:
            mapping = formats.mapping_parse(mapping_text)
        except formats.MappingError as error:
            return render(request, template, {**context, "problem": str(error)}, status=400)
    stream = upload.open("rb")
    head = stream.read(64)
    stream.seek(0)
    kind = formats.file_kind(name=upload.name, content_type=upload.content_type or "", head=head)
    limits = services.import_limits()
    try:
        rows = formats.read_rows(
            kind,
            upload.file if kind == "parquet" else stream,
            limits=limits,
            max_body_bytes=settings.FINELINE_IMPORT_MAX_BODY_BYTES,
        )
        preview = formats.import_preview(rows, kind=kind, labels=project.labels, limits=limits, mapping=mapping)
    except formats.BodyTooLarge as error:
        return render(request, template, {**context, "problem": f"The file is too large: {error}"}, status=400)
    if not mapping_text and preview["needs_mapping"] and preview["mapping"]:
        context["mapping_text"] = json.dumps(preview["mapping"], ensure_ascii=False)
    context.update(preview=preview, kind=kind, rows=[_preview_row(row) for row in preview["rows"]])
    return render(request, template, context)


def _preview_row(row: dict) -> dict:
    if row["example"] is None:
        return row
    example = row["example"]
    turns = [(m["role"], _shorten(m["content"])) for m in example["messages"]]
    metadata = _shorten(json.dumps(example["metadata"], ensure_ascii=False)) if example["metadata"] else ""
    return {**row, "turns": turns, "label": example["label"], "metadata": metadata}


def _shorten(text: str) -> str:
    return text if len(text) <= PREVIEW_TEXT_CHARS else text[: PREVIEW_TEXT_CHARS - 1] + "…"
