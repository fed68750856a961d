"""Training recipes: no Django inside. Each takes a documented config dataclass and plain paths, reports progress
through a callback, and imports torch / transformers / peft inside functions so the web process stays light."""
