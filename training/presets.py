"""Named starting points for a run's settings. A preset fills the launch form; every field stays editable."""

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
