"""Pre-flight arithmetic against published parameter counts and against real models built here."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from training.recipes import estimate

PUBLISHED = {
    "meta-llama/Llama-3.1-8B-Instruct": 8_030_261_248,
    "meta-llama/Llama-3.2-3B-Instruct": 3_212_749_824,
    "Qwen/Qwen2.5-7B-Instruct": 7_615_616_512,
    "mistralai/Mistral-7B-Instruct-v0.3": 7_248_023_552,
}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_parameter_counts_match_the_published_models(model):
    assert estimate.Shape.from_config(estimate.KNOWN_SHAPES[model]).total_params() == PUBLISHED[model]


def test_lora_on_attention_of_llama_8b_trains_13_6_million_parameters():
    shape = estimate.Shape.from_config(estimate.KNOWN_SHAPES["meta-llama/Llama-3.1-8B-Instruct"])
    trainable = shape.lora_params(16, ["q_proj", "k_proj", "v_proj", "o_proj"])
    assert trainable == 13_631_488 and trainable / shape.total_params() < 0.002


@pytest.mark.parametrize("tied", [True, False])
def test_counts_match_a_real_model_and_peft(tied):
    """A small Llama with grouped-query attention: the formula, transformers and peft agree."""
    config = {
        "hidden_size": 64,
        "intermediate_size": 176,
        "num_hidden_layers": 3,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "vocab_size": 300,
        "tie_word_embeddings": tied,
    }
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**config))
    shape = estimate.Shape.from_config(config)
    assert shape.total_params() == sum(p.numel() for p in model.parameters())
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=targets, task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert shape.lora_params(4, targets) == trainable


def test_a_full_fine_tune_of_8b_needs_several_gpus_and_lora_fits_one():
    shape = estimate.Shape.from_config(estimate.KNOWN_SHAPES["meta-llama/Llama-3.1-8B-Instruct"])
    full = estimate.memory(shape=shape, method="full", trainable=0, dtype_bytes=2, micro_batch=1, seq_len=2048)
    lora = estimate.memory(shape=shape, method="lora", trainable=13_631_488, dtype_bytes=2, micro_batch=1, seq_len=2048)
    assert full["weights"] == lora["weights"] == pytest.approx(14.96, abs=0.01)  # 8.03e9 x 2 bytes
    assert estimate.gpus_needed(full["total"], 80) == 2 and estimate.gpus_needed(lora["total"], 80) == 1
    assert 15 < lora["total"] < 40  # weights + activations: one 40 GB card (no activation checkpointing)


def test_time_is_flops_over_throughput():
    # 1e6 tokens x 4 x 1e9 params = 4e15 FLOPs at 50% of 1e15 FLOP/s: 8 s.
    assert estimate.seconds(tokens=1_000_000, total_params=10**9, method="lora", flops=1e15, mfu=0.5) == 8.0
    assert estimate.seconds(tokens=1_000_000, total_params=10**9, method="full", flops=1e15, mfu=0.5) == 12.0
