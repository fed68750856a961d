"""One row of a project's, by id, for the API: the caller narrows the rows to the project it checked the user's access
to; an id outside them is a 404 that names what was asked for."""

from typing import TypeVar

from django.db.models import Model, QuerySet
from rest_framework.exceptions import NotFound

M = TypeVar("M", bound=Model)


def project_object_or_404(objects: QuerySet[M], *, pk: int, name: str) -> M:
    """The row `pk` among `objects` (one project's rows), or NotFound: "No such <name>."."""
    found = objects.filter(pk=pk).first()
    if found is None:
        raise NotFound(f"No such {name}.")
    return found
