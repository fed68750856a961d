"""Filters of the pages: Markdown rendered without raw HTML, the starting height of a text's editor, relative
times, server paths, a page's links by id."""

from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from core.server_paths import redact
from curation import text

register = template.Library()


@register.filter
def markdown(value: str) -> str:
    return mark_safe(text.markdown_html(value))  # markdown-it escapes every character of the text (html off)


@register.filter
def editor_rows(value: str) -> int:
    return text.editor_rows(value)


@register.filter
def long_turn(message: dict) -> bool:
    """A user or system turn long enough to start folded; the assistant's answers are always shown whole."""
    return message.get("role") in ("user", "system") and len(message.get("content", "")) > text.LONG_TURN_CHARS


@register.filter
def ago(value) -> str:
    """When something happened, as people say it: "just now" under a minute (timesince says "0 minutes"), then
    "5 minutes ago", "2 hours, 3 minutes ago"."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"


@register.filter
def server_paths(value):
    """Server folders named as $FINELINE_VAR_DIR / $FINELINE_MODELS_DIR, never spelled out (core.server_paths)."""
    return redact(value) if isinstance(value, str) else value


@register.filter
def with_id(url: str, pk: int) -> str:
    """A URL reversed with pk=0 (once for a whole page), for the object `pk`: its last /0/ segment replaced."""
    head, _, tail = url.rpartition("/0/")
    return f"{head}/{int(pk)}/{tail}"


@register.filter
def provenance(metadata) -> dict | None:
    """A generated example's provenance (`metadata.generated`, written by a generation job) when it has the shape a
    job writes: {job, source, model, seed_ids}; None otherwise (metadata is anyone's to import, so its values are
    checked before a link is built from them)."""
    generated = metadata.get("generated") if isinstance(metadata, dict) else None
    if not isinstance(generated, dict):
        return None
    job, seeds = generated.get("job"), generated.get("seed_ids")
    if not isinstance(job, int) or isinstance(job, bool) or job < 1 or not isinstance(seeds, list):
        return None
    return {
        "job": job,
        "source": str(generated.get("source", "")),
        "model": str(generated.get("model", "")),
        "prompt": str(generated.get("prompt", ""))[:4000],
        "seed_ids": [pk for pk in seeds if isinstance(pk, int) and not isinstance(pk, bool) and pk > 0][:20],
    }
