"""The launch form: parses what the lead typed; the service checks the ranges and the readiness rule."""

from django import forms

from core.errors import ServiceError
from curation.models import DatasetVersion, Project

from . import base_models
from .presets import PRESETS
from .recipes.config import OPTIONS, Option

FORM_OPTIONS = [name for name, option in OPTIONS.items() if option.form]
LORA_OPTIONS = [name for name in OPTIONS if name.startswith("lora_")]


def option_field(option: Option) -> forms.Field:
    """The form field of a recipe setting: its label and help from SFTConfig. Its bounds stay with the service, so
    that the pre-flight can warn about a value out of range (htmx sends no invalid form) with the service's words."""
    common = {"label": option.label, "help_text": option.help}
    if option.kind is bool:
        return forms.BooleanField(required=False, **common)
    if option.kind is list:
        return forms.CharField(**common)
    field = forms.IntegerField if option.kind is int else forms.FloatField
    return field(required=not option.nullable, **common)


# The recipe's settings as form fields, in SFTConfig's order; the launch form puts them after its own.
TrainingOptionsForm = type(
    "TrainingOptionsForm", (forms.Form,), {name: option_field(OPTIONS[name]) for name in FORM_OPTIONS}
)


class TrainingRunForm(TrainingOptionsForm):
    field_order = ["dataset_version", "base_model", "preset", "method", *FORM_OPTIONS, "override_readiness"]
    dataset_version = forms.TypedChoiceField(coerce=int, label="Dataset version")
    base_model = forms.CharField(
        max_length=300,
        label="Base model",
        help_text="A listed model, a Hugging Face id, or a folder under the models folder (its absolute path).",
    )
    preset = forms.ChoiceField(choices=[(key, preset["label"]) for key, preset in PRESETS.items()], required=False)
    method = forms.ChoiceField(choices=[("lora", "LoRA"), ("full", "Full fine-tune")])
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
        # the recipe's defaults, then the preset's own values (a full fine-tune's preset names no LoRA setting)
        options = {name: OPTIONS[name].default for name in FORM_OPTIONS} | preset["options"]
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
        options = {name: data[name] for name in FORM_OPTIONS if name in data}
        if data.get("method") == "full":
            for name in LORA_OPTIONS:
                options.pop(name, None)
        return options
