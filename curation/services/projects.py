"""Writes to projects and their members: create, update, the tokenizer, roles, and who leads."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from core import server_paths
from core.errors import ServiceError

from .. import formats, patterns
from ..models import Membership, Project
from .scans import quality_scan_start

OUTPUT_FORMAT_KINDS = ("none", "regex", "json_schema")


def output_format_clean(spec: Any) -> dict:
    """Validate an output format spec: {"kind": "none"}, {"kind": "regex", "pattern"} or {"kind": "json_schema",
    "schema"}."""
    if spec in (None, {}):
        return {"kind": "none"}
    if not isinstance(spec, dict) or spec.get("kind") not in OUTPUT_FORMAT_KINDS:
        raise ServiceError(f"`kind` must be one of {', '.join(OUTPUT_FORMAT_KINDS)}.", field="output_format")
    kind = spec["kind"]
    if kind == "none":
        return {"kind": "none"}
    if kind == "regex":
        pattern = spec.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise ServiceError("a regex output format needs a non-empty `pattern`.", field="output_format")
        if refusal := patterns.regex_refusal(pattern):
            raise ServiceError(f"`pattern` cannot be used: {refusal}", field="output_format")
        return {"kind": "regex", "pattern": pattern}
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise ServiceError("a json_schema output format needs a `schema` object.", field="output_format")
    if refusal := patterns.schema_refusal(schema):
        raise ServiceError(f"`schema` cannot be used: {refusal}", field="output_format")
    return {"kind": "json_schema", "schema": schema}


def labels_clean(labels: Any) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ServiceError("`labels` must be a list of strings.", field="labels")
    cleaned = [label.strip() for label in labels if label.strip()]
    if len(set(cleaned)) != len(cleaned):
        raise ServiceError("`labels` must not repeat a label.", field="labels")
    if any(len(label) > formats.MAX_LABEL_LENGTH for label in cleaned):
        raise ServiceError(f"a label is at most {formats.MAX_LABEL_LENGTH} characters.", field="labels")
    return cleaned


@transaction.atomic
def project_create(*, creator: AbstractBaseUser, name: str, slug: str, **fields: Any) -> Project:
    """Create a project; its creator becomes its lead."""
    if Project.objects.filter(slug=slug).exists():
        raise ServiceError(f"a project with slug {slug!r} already exists.", field="slug")
    project = Project(name=name, slug=slug)
    _project_assign(project, fields)
    project.save()
    Membership.objects.create(project=project, user=creator, role=Membership.Role.LEAD)
    return project


def project_update(*, project: Project, **fields: Any) -> Project:
    format_before = project.output_format
    _project_assign(project, fields)
    project.save()
    if project.output_format != format_before:
        quality_scan_start(project=project)  # every answer must be checked against the new format
    return project


def _project_assign(project: Project, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if key == "labels":
            value = labels_clean(value)
        elif key == "output_format":
            value = output_format_clean(value)
        elif key == "reviews_required":
            if not isinstance(value, int) or not 1 <= value <= 5:
                raise ServiceError("`reviews_required` must be a whole number from 1 to 5.", field=key)
        elif key == "baseline_score":
            if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
                raise ServiceError("`baseline_score` is a share from 0 to 1.", field=key)
        elif key == "tokenizer":
            value = _tokenizer_clean(project, value)
        elif key not in {"name", "task_description", "system_prompt"}:
            raise ServiceError(f"unknown project field {key!r}.", field=key)
        setattr(project, key, value)
    if not project.output_format:
        project.output_format = {"kind": "none"}


def _tokenizer_clean(project: Project, value: Any) -> str:
    """A tokenizer is a model like a base model (core.server_paths): listed, a Hugging Face id or a folder under
    the models folder. The one already set stays, also as pages show it (its folder redacted)."""
    value = str(value or "").strip()
    if not value:
        return ""
    if project.tokenizer and value in (project.tokenizer, server_paths.redact(project.tokenizer)):
        return project.tokenizer
    try:
        return server_paths.model_source_check(value)
    except server_paths.ModelSourceError as error:
        raise ServiceError(f"tokenizer: {error}", field="tokenizer") from None


def project_tokenizer_adopt(*, project: Project, tokenizer: str) -> Project:
    """Count the project's tokens with the tokenizer of a base model a finished run trained from (a worker's own
    value: tiny-local's build folder included), and recount them."""
    project.tokenizer = tokenizer
    project.save(update_fields=["tokenizer", "updated_at"])
    quality_scan_start(project=project)
    return project


def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Add a member or change their role."""
    if role not in Membership.Role.values:
        raise ServiceError(f"`role` must be one of {', '.join(Membership.Role.values)}.", field="role")
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


def is_lead(*, project: Project, user: AbstractBaseUser | None) -> bool:
    """Whether `user` acts as the project's lead. A project from selectors.project_get carries that user's role
    already; any other project asks the database."""
    if user is None:
        return True  # the system itself (demo loader, migrations)
    if user.is_superuser:
        return True
    if getattr(project, "user_role_of", None) == user.pk:
        return project.user_role == Membership.Role.LEAD
    return Membership.objects.filter(project=project, user=user, role=Membership.Role.LEAD).exists()
