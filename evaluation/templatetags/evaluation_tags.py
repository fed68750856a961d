"""Formatting of metric values for the evaluation pages."""

from django import template

register = template.Library()
SHARES = ("format_accuracy", "label_accuracy", "macro_f1", "hallucination_rate")


@register.filter
def metric(value, name: str) -> str:
    """A metric as a reader wants it: shares as percentages, latency in ms, cost per 1,000 queries in USD."""
    if value is None:
        return "—"
    if name in SHARES:
        return f"{value:.1%}"
    if name.startswith("latency"):
        return f"{value:,.0f} ms"
    if name == "cost_per_query_usd":
        return f"${value * 1000:,.4f} / 1k"
    if name == "chrf":
        return f"{value:.1f}"
    return f"{value:.3f}"


@register.filter
def delta(value, name: str) -> str:
    """A difference between two values of a metric, signed: shares in percentage points, the rest in its unit."""
    if value is None:
        return "—"
    if name in SHARES:
        return f"{value * 100:+.1f} pts"
    if name.startswith("latency"):
        return f"{value:+,.0f} ms"
    if name == "cost_per_query_usd":
        return f"{value * 1000:+,.4f} $/1k"
    if name == "chrf":
        return f"{value:+.1f}"
    return f"{value:+.3f}"


@register.filter
def get(mapping, key):
    return mapping.get(key) if mapping else None
