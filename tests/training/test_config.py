"""The recipe's options, declared once (SFTConfig's field metadata): the service's checks, the launch form, the API
schema, the presets and the README's table all follow the declaration."""

import dataclasses
import re
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

from core.errors import ServiceError
from training import services
from training.forms import FORM_OPTIONS, TrainingRunForm
from training.presets import PRESETS, preset_default
from training.recipes import tiny_local
from training.recipes.config import ARGUMENTS, OPTIONS, SFTConfig, options_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_but_the_arguments_is_an_option_with_help_and_a_default_in_its_bounds():
    assert set(OPTIONS) == {spec.name for spec in dataclasses.fields(SFTConfig)} - set(ARGUMENTS)
    for option in OPTIONS.values():
        assert option.help and option.label
        if option.kind in (int, float):
            assert option.min is not None and option.max is not None
            assert option.default is None or option.min <= option.default <= option.max, option.name
    defaults = {name: list(o.default) if o.kind is list else o.default for name, o in OPTIONS.items()}
    assert services.training_options_clean(defaults) == defaults


def test_the_service_checks_each_option_by_its_declaration():
    with pytest.raises(ServiceError, match="`lora_r` must be between 1 and 1024"):
        services.training_options_clean({"lora_r": OPTIONS["lora_r"].max + 1})
    with pytest.raises(ServiceError, match="`warmup_steps` must be a whole number"):
        services.training_options_clean({"warmup_steps": 1.5})
    with pytest.raises(ServiceError, match="unknown training option"):
        services.training_options_clean({"extra": {}})
    assert services.training_options_clean({"max_steps": None, "lora_targets": "q_proj, v_proj"}) == {
        "max_steps": None,
        "lora_targets": ["q_proj", "v_proj"],
    }


def test_every_preset_is_valid_and_the_default_one_is_chosen_in_one_place():
    for key, preset in PRESETS.items():
        assert preset["method"] in ("lora", "full"), key
        assert services.training_options_clean(dict(preset["options"])), key
    assert preset_default(base_model=tiny_local.NAME) == "tiny-local-demo"
    assert preset_default(base_model="Qwen/Qwen2.5-7B-Instruct") == "lora-default"


@pytest.mark.django_db
def test_the_launch_form_takes_its_option_fields_from_the_declaration(project):
    fields = TrainingRunForm(project=project, base_models=[]).fields
    names = list(fields)
    assert names[names.index("method") + 1 : names.index("override_readiness")] == FORM_OPTIONS
    for name in FORM_OPTIONS:
        assert fields[name].label == OPTIONS[name].label and fields[name].help_text == OPTIONS[name].help
    assert not fields["max_steps"].required and not fields["packing"].required and fields["lora_r"].required


def test_the_api_schema_shows_every_option_with_its_bounds():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    properties = schema["components"]["schemas"]["TrainingOptionsRequest"]["properties"]
    assert list(properties) == list(OPTIONS)
    assert (properties["lora_r"]["minimum"], properties["lora_r"]["maximum"]) == (1, 1024)
    assert properties["learning_rate"]["default"] == SFTConfig.learning_rate
    assert properties["lora_targets"]["type"] == "array" and properties["packing"]["type"] == "boolean"


def test_the_readme_table_of_options_is_the_generated_one():
    block = re.search(r"<!-- training-options:[^\n]*\n(.*?)\n<!-- /training-options -->", README.read_text(), re.S)
    assert block, "README.md lost its table of training options"
    assert block.group(1) == options_table(), "regenerate it: python -m training.recipes.config"
