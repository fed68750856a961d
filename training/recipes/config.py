"""The recipe's settings: one dataclass, each field with its bounds and help in `metadata` (as peft's LoraConfig and
trl's SFTConfig do). No Django: the service's checks, the launch form, the API schema and the README's table of
options are all read from here (`OPTIONS`).

A field's metadata is plain data:
    help    what it does (the form's help text, the schema's description, the README)
    label   the launch form's label
    min/max its bounds, inclusive (numbers only)
    form    False for a setting the API takes but the launch form does not show

The defaults are what a run gets when it names nothing (an API launch without `options`, a script). The launch form
and `manage.py train` start from a preset instead (`training/presets.py`), which overrides some of them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
# Given beside the options (the service's own arguments), not among them.
ARGUMENTS = ("base_model", "method")


def _setting(
    default,
    help: str,
    label: str,
    low: float | None = None,
    high: float | None = None,
    *,
    form: bool = True,
    shown_default: str | None = None,
):
    metadata = {"help": help, "label": label, "min": low, "max": high, "form": form, "shown_default": shown_default}
    return field(default=default, metadata=metadata)


@dataclass
class SFTConfig:
    """Everything a run needs. LoRA defaults come from the brief: r=16, alpha=32, q/k/v/o, dropout 0.1, no bias."""

    base_model: str
    method: str = "lora"  # "lora" or "full"
    lora_r: int = _setting(16, "LoRA rank: the inner size of each adapter.", "LoRA rank r", 1, 1024)
    lora_alpha: int = _setting(
        32, "LoRA scale: the adapter's update is multiplied by alpha / r.", "LoRA alpha", 1, 8192
    )
    lora_dropout: float = _setting(0.1, "Dropout on the adapter's input while training.", "LoRA dropout", 0, 0.9)
    lora_targets: tuple[str, ...] = _setting(
        DEFAULT_TARGETS,
        "Comma-separated module names that get an adapter (the API also takes a list).",
        "Target modules",
    )
    epochs: float = _setting(1.0, "Passes over the training split.", "Epochs", 0.01, 1000)
    max_steps: int | None = _setting(None, "Overrides epochs when set.", "Max steps", 1, 10_000_000)
    learning_rate: float = _setting(
        5e-3, "Peak AdamW learning rate (linear warmup, then linear decay).", "Learning rate", 1e-9, 1.0
    )
    batch_size: int = _setting(16, "Examples per micro-batch, on each process.", "Batch size", 1, 4096)
    gradient_accumulation: int = _setting(1, "Micro-batches per optimizer step.", "Gradient accumulation", 1, 4096)
    max_seq_length: int = _setting(
        1024,
        "Tokens kept of each example; longer ones are cut.",
        "Max sequence length",
        16,
        1_048_576,
        shown_default="the project's max_seq_length",  # training_run_create gives a run its project's
    )
    packing: bool = _setting(False, "Pack whole examples into full-length blocks.", "Packing")
    warmup_steps: int = _setting(5, "Steps of linear learning-rate warmup.", "Warmup steps", 0, 1_000_000, form=False)
    eval_every: int = _setting(20, "Steps between validation passes.", "Evaluate every", 1, 1_000_000, form=False)
    checkpoint_every: int = _setting(
        20, "Steps between checkpoints (a run resumes from the last one).", "Checkpoint every", 1, 1_000_000, form=False
    )
    keep_checkpoints: int = _setting(2, "Newest checkpoints kept on disk.", "Checkpoints kept", 1, 100, form=False)
    seed: int = _setting(0, "Seed of the shuffling and of the adapter's initial weights.", "Seed", -(2**31), 2**31 - 1)


@dataclass(frozen=True)
class Option:
    """One setting a lead may give, read from SFTConfig: `kind` is int, float, bool or list (of module names)."""

    name: str
    kind: type
    default: typing.Any
    nullable: bool
    min: float | None
    max: float | None
    help: str
    label: str
    form: bool
    shown_default: str | None  # what the docs say instead of `default`, when a run gets another value


def _option(spec: dataclasses.Field, annotation) -> Option:
    nullable = isinstance(annotation, types.UnionType) and type(None) in typing.get_args(annotation)
    if nullable:
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    kind = list if typing.get_origin(annotation) is tuple else annotation
    meta = spec.metadata
    return Option(spec.name, kind, spec.default, nullable, **meta)


def _options() -> dict[str, Option]:
    hints = typing.get_type_hints(SFTConfig)
    return {
        spec.name: _option(spec, hints[spec.name])
        for spec in dataclasses.fields(SFTConfig)
        if spec.name not in ARGUMENTS
    }


OPTIONS: dict[str, Option] = _options()


def _cell(value) -> str:
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, bool):
        return str(value).lower()
    return "none" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:g}"


def options_table() -> str:
    """The README's table of options (`python -m training.recipes.config` prints it)."""
    lines = [
        "| Option | Type | Default | Range | Launch form | What it does |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for option in OPTIONS.values():
        kind = (
            "list of names" if option.kind is list else option.kind.__name__ + (" or null" if option.nullable else "")
        )
        span = f"{_cell(option.min)} to {_cell(option.max)}" if option.min is not None else ""
        default = option.shown_default or _cell(option.default)
        form = "yes" if option.form else "API and shell only"
        lines.append(f"| `{option.name}` | {kind} | {default} | {span} | {form} | {option.help} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(options_table())
