"""Reads of curation data, always scoped to what the user may see."""

from __future__ import annotations

from collections.abc import Iterator

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import BooleanField, Count, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404

from . import formats
from .models import Example, ImportJob, Membership, Project


def project_list(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """The projects a user may see: their memberships, or every project for a superuser."""
    projects = Project.objects.all()
    if not user.is_superuser:
        projects = projects.filter(memberships__user=user)
    return projects.order_by("name")


def project_role(*, project: Project, user: AbstractBaseUser) -> str | None:
    """The user's role in the project (a superuser counts as lead), or None for a non-member."""
    if user.is_superuser:
        return Membership.Role.LEAD
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def project_get(*, user: AbstractBaseUser, slug: str, lead: bool = False) -> Project:
    """The project if the user is a member (404 otherwise, so its existence does not leak); `lead` requires a lead."""
    project = Project.objects.filter(slug=slug).first()
    role = project_role(project=project, user=user) if project else None
    if role is None:
        raise Http404("No such project.")
    if lead and role != Membership.Role.LEAD:
        raise PermissionDenied("Only a project lead can do this.")
    project.user_role = role
    return project


def project_status_counts(*, project: Project) -> dict[str, int]:
    rows = Example.objects.filter(project=project).values_list("status").annotate(n=Count("id")).order_by()
    return dict(rows)


def project_label_counts(*, project: Project) -> dict[str, int]:
    rows = Example.objects.filter(project=project).values_list("label").annotate(n=Count("id")).order_by()
    return dict(rows)


def example_list(
    *, project: Project, status: str = "", label: str = "", tag: str = "", q: str = ""
) -> QuerySet[Example]:
    """A project's examples filtered by status, label, tag and free text (word search over every message)."""
    examples = Example.objects.filter(project=project)
    if status:
        examples = examples.filter(status=status)
    if label:
        examples = examples.filter(label=label)
    if tag:
        if connection.vendor == "postgresql":
            examples = examples.filter(tags__contains=[tag])  # served by a GIN index
        else:
            examples = examples.filter(tags__icontains=f'"{tag}"')
    words = q.split()
    if words and connection.vendor == "postgresql":
        # Indexed rows through the GIN index; rows an import just wrote (not indexed yet) by a scan of those alone.
        patterns = [f"%{_like_escape(word)}%" for word in words]
        unindexed = " AND ".join(["curation_example.messages::text ILIKE %s"] * len(patterns))
        examples = examples.filter(
            RawSQL(
                "(curation_example.search_vector @@ plainto_tsquery('simple', %s)"
                f" OR (curation_example.search_vector IS NULL AND {unindexed}))",
                [" ".join(words), *patterns],
                output_field=BooleanField(),
            )
        )
    elif words:
        for word in words:
            examples = examples.filter(messages__icontains=word)
    return examples.order_by("id")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def example_get(*, project: Project, example_id: int) -> Example:
    example = Example.objects.filter(project=project, pk=example_id).first()
    if example is None:
        raise Http404("No such example.")
    return example


def example_export_lines(*, examples: QuerySet[Example], messages_only: bool = False) -> Iterator[bytes]:
    """Stream examples as JSONL lines (OpenAI chat format), a server-side cursor at a time."""
    rows = examples.values_list("messages", "label", "tags", "metadata").iterator(chunk_size=2000)
    for messages, label, tags, metadata in rows:
        yield formats.example_to_json_line(messages, label, tags, metadata, messages_only=messages_only)


def import_job_list(*, project: Project) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(project=project).select_related("created_by").order_by("-created_at")
