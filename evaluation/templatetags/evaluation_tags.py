"""Formatting of metric values for the evaluation pages."""

from django import template

register = template.Library()


@register.filter
def metric(value, name: str) -> str:
    """A metric as a reader wants it: shares as percentages, latency in ms, cost per 1,000 queries in USD."""
    if value is None:
        return "—"
    if name in ("format_accuracy", "label_accuracy", "macro_f1", "hallucination_rate"):
        return f"{value:.1%}"
    if name.startswith("latency"):
        return f"{value:,.0f} ms"
    if name == "cost_per_query_usd":
        return f"${value * 1000:,.4f} / 1k"
    return f"{value:.3f}"


@register.filter
def get(mapping, key):
    return mapping.get(key) if mapping else None
