"""What counts as a row id or a version number in a form or query parameter: one rule for every view."""

MAX_DIGITS = 18  # a bigint holds every 18-digit number; longer is nobody's id, never a 500


def form_int(value: str | None) -> int | None:
    """The non-negative integer `value` spells, or None when it spells none (the caller answers 400 or 404)."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > MAX_DIGITS:
        return None
    return int(value)
