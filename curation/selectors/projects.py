"""Reads of projects: those a user may see or create, their roles and leads, their examples counted by the counters."""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import QuerySet, Sum
from django.http import Http404

from core.rows import model_columns, model_from_row

from ..models import ExampleCounter, Membership, Project


def project_list(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """The projects a user may see: their memberships, or every project for a superuser."""
    projects = Project.objects.all()
    if not user.is_superuser:
        projects = projects.filter(memberships__user=user)
    return projects.order_by("name")


def project_create_allowed(*, user: AbstractBaseUser) -> bool:
    """Whether the user may create a project (and lead it): staff only, unless FINELINE_PROJECT_CREATORS is `any`."""
    return user.is_authenticated and (settings.FINELINE_PROJECT_CREATORS == "any" or user.is_staff or user.is_superuser)


def project_lead(*, project: Project) -> AbstractBaseUser | None:
    """The project's first lead: who shell commands act as when no user is named."""
    lead = project.memberships.filter(role=Membership.Role.LEAD).select_related("user").order_by("pk").first()
    return lead.user if lead else None


@cache
def _member_project_sql() -> str:
    return (
        f"SELECT m.role, {model_columns(Project, 'p')} FROM curation_membership m"
        " JOIN curation_project p ON p.id = m.project_id WHERE p.slug = %s AND m.user_id = %s"
    )


def project_get(*, user: AbstractBaseUser, slug: str, lead: bool = False) -> Project:
    """The project if the user is a member (404 otherwise, so its existence does not leak); `lead` requires a lead."""
    if user.is_superuser:
        project, role = Project.objects.filter(slug=slug).first(), Membership.Role.LEAD
    else:
        # Every page asks this first: one statement written out, not a queryset compiled each time.
        with connection.cursor() as cursor:
            cursor.execute(_member_project_sql(), [slug, user.pk])
            row = cursor.fetchone()
        project, role = (model_from_row(Project, row[1:]), row[0]) if row else (None, None)
    if project is None:
        raise Http404("No such project.")
    if lead and role != Membership.Role.LEAD:
        raise PermissionDenied("Only a project lead can do this.")
    project.user_role, project.user_role_of = role, user.pk  # the role of this user (read by services.is_lead)
    return project


def example_counts(*, project: Project) -> list[dict[str, Any]]:
    """The project's examples counted by status, label, format state and edge-case tag, from the counters the
    database maintains (ExampleCounter): a handful of rows whatever the size of the project."""
    rows = (
        ExampleCounter.objects.filter(project=project)
        .values("status", "label", "format_state", "edge_case")
        .annotate(count=Sum("n"))
        .order_by()
    )
    return [row for row in rows if row["count"]]


def _count_by(rows: list[dict[str, Any]], key: str, **match: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        if all(row[field] == value for field, value in match.items()):
            counts[row[key]] += row["count"]
    return dict(counts)


def project_status_counts(*, project: Project) -> dict[str, int]:
    return _count_by(example_counts(project=project), "status")


def project_label_counts(*, project: Project) -> dict[str, int]:
    return _count_by(example_counts(project=project), "label")
