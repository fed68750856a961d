"""Named starting points for a run's settings. A preset fills the launch form (and `manage.py train` starts from one);
every field stays editable. Each names values of SFTConfig's options (training/recipes/config.py, where their bounds
and meaning live); a setting a preset leaves out keeps the recipe's default. An API launch names no preset: it gets
the options it sends, and the recipe's defaults for the rest."""

from .recipes import tiny_local

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL_LINEAR = ATTENTION + ["gate_proj", "up_proj", "down_proj"]

PRESETS: dict[str, dict] = {
    "lora-default": {
        "label": "LoRA r16 on attention (the brief's defaults)",
        "method": "lora",
        "options": {
            "lora_r": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.1,
            "lora_targets": ATTENTION,
            "learning_rate": 2e-4,
            "epochs": 3.0,
            "batch_size": 8,
            "gradient_accumulation": 2,
        },
    },
    "lora-light": {
        "label": "LoRA r8 on q/v: smallest adapter, least memory",
        "method": "lora",
        "options": {
            "lora_r": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.05,
            "lora_targets": ["q_proj", "v_proj"],
            "learning_rate": 2e-4,
            "epochs": 3.0,
            "batch_size": 8,
            "gradient_accumulation": 2,
        },
    },
    "lora-wide": {
        "label": "LoRA r64 on every linear layer: most capacity",
        "method": "lora",
        "options": {
            "lora_r": 64,
            "lora_alpha": 128,
            "lora_dropout": 0.05,
            "lora_targets": ALL_LINEAR,
            "learning_rate": 1e-4,
            "epochs": 2.0,
            "batch_size": 8,
            "gradient_accumulation": 2,
        },
    },
    "full": {
        "label": "Full fine-tune: every weight (needs far more GPU memory)",
        "method": "full",
        "options": {"learning_rate": 1e-5, "epochs": 2.0, "batch_size": 4, "gradient_accumulation": 4},
    },
    "tiny-local-demo": {
        "label": "tiny-local on the CPU: learns the demo's format in a couple of minutes",
        "method": "lora",
        "options": {
            "lora_r": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.1,
            "lora_targets": ATTENTION,
            "learning_rate": 5e-3,
            "epochs": 8.0,
            "batch_size": 16,
            "gradient_accumulation": 1,
        },
    },
}


def preset_default(*, base_model: str) -> str:
    """The preset a launch starts from when none is chosen (the launch form's first choice, `manage.py train`'s):
    the CPU demo's settings for tiny-local, the brief's LoRA defaults for any other base model."""
    return "tiny-local-demo" if base_model == tiny_local.NAME else "lora-default"
