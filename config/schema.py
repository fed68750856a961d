"""OpenAPI post-processing: every operation documents the errors the API answers with."""

ERROR = {
    "type": "object",
    "description": "`detail` says what went wrong; `field` names the input at fault. Validation errors map each "
    "field to its messages instead.",
    "properties": {"detail": {"type": "string"}, "field": {"type": "string"}},
    "additionalProperties": True,
}
ERRORS = {
    "400": "The request breaks a rule (bad input, a business rule): nothing was written.",
    "401": "No valid API token (or session).",
    "403": "Allowed only to a project lead.",
    "404": "No such object, or not in a project of yours.",
}


def add_error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: add the 400/401/403/404 answers, with one shared Error component, to every
    operation that does not document them itself."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(code, {"description": description, "content": reference})
    return result
