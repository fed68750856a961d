"""The launch form: parses what the lead typed; the service checks the ranges and the readiness rule."""

from django import forms

from core.errors import ServiceError
from curation.models import DatasetVersion, Project

from . import base_models
from .presets import PRESETS

OPTION_FIELDS = [
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_targets",
    "epochs",
    "max_steps",
    "learning_rate",
    "batch_size",
    "gradient_accumulation",
    "max_seq_length",
    "packing",
    "seed",
]


class TrainingRunForm(forms.Form):
    OPTIONS = OPTION_FIELDS
    dataset_version = forms.TypedChoiceField(coerce=int, label="Dataset version")
    base_model = forms.CharField(
        max_length=300,
        label="Base model",
        help_text="A listed model, a Hugging Face id, or a folder under the models folder (its absolute path).",
    )
    preset = forms.ChoiceField(choices=[(key, preset["label"]) for key, preset in PRESETS.items()], required=False)
    method = forms.ChoiceField(choices=[("lora", "LoRA"), ("full", "Full fine-tune")])
    lora_r = forms.IntegerField(label="LoRA rank r")
    lora_alpha = forms.IntegerField(label="LoRA alpha")
    lora_dropout = forms.FloatField(label="LoRA dropout")
    lora_targets = forms.CharField(label="Target modules", help_text="Comma-separated module names.")
    epochs = forms.FloatField()
    max_steps = forms.IntegerField(required=False, label="Max steps", help_text="Overrides epochs when set.")
    learning_rate = forms.FloatField(label="Learning rate")
    batch_size = forms.IntegerField(label="Batch size")
    gradient_accumulation = forms.IntegerField(label="Gradient accumulation")
    max_seq_length = forms.IntegerField(label="Max sequence length")
    packing = forms.BooleanField(required=False)
    seed = forms.IntegerField()
    override_readiness = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Train although not ready, because",
        help_text="Required when the readiness verdict is NOT READY; kept on the run.",
    )

    def __init__(self, *args, project: Project, base_models: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        versions = DatasetVersion.objects.filter(project=project).order_by("-number").values_list("number", flat=True)
        self.fields["dataset_version"].choices = [(number, f"v{number}") for number in versions]
        self.base_models = base_models

    def clean_base_model(self) -> str:
        try:
            return base_models.base_model_clean(self.cleaned_data["base_model"])
        except ServiceError as error:
            raise forms.ValidationError(error.message) from None

    @staticmethod
    def initial_for(preset_key: str, base_model: str, version: int | None) -> dict:
        preset = PRESETS[preset_key]
        options = {"max_seq_length": 1024, "packing": False, "seed": 0, "max_steps": None, **preset["options"]}
        defaults = PRESETS["lora-default"]["options"]
        for name in ("lora_r", "lora_alpha", "lora_dropout", "lora_targets"):
            options.setdefault(name, defaults[name])
        options["lora_targets"] = ",".join(options["lora_targets"])
        return {
            "preset": preset_key,
            "method": preset["method"],
            "base_model": base_model,
            "dataset_version": version,
            **options,
        }

    def options(self) -> dict:
        """The recipe settings, in the service's terms (LoRA settings only for a LoRA run)."""
        data = self.cleaned_data
        options = {name: data[name] for name in OPTION_FIELDS if name in data}
        if data.get("method") == "full":
            for name in ("lora_r", "lora_alpha", "lora_dropout", "lora_targets"):
                options.pop(name, None)
        return options
