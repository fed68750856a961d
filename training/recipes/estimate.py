"""Pre-flight arithmetic for a run, before any weight is loaded: parameter counts, GPU memory, time. No Django.

Parameter counts are exact for decoder-only transformers described by the usual Hugging Face config fields
(Llama, Mistral, Qwen2, Gemma...): embeddings + per layer (q, k, v, o, gate, up, down, two norms) + final norm +
LM head unless tied. A LoRA adapter of rank r on a linear layer (in -> out) adds r x (in + out) parameters.

Memory (bytes), for this project's recipe (AdamW states in the parameters' dtype; LoRA weights in fp32, as peft
keeps them; no activation checkpointing; SDPA attention):
    weights            total_params x dtype_bytes
    LoRA               trainable x (4 weight + 4 grad + 8 AdamW)
    full               total_params x dtype_bytes x 3 (grad + two AdamW moments)
    activations        micro_batch x seq x hidden x layers x 17 x dtype_bytes    (Korthikanti et al. 2022, sbh x 34
                       bytes per layer in 16-bit, without the attention-score term that SDPA never materialises)
    logits             micro_batch x seq x vocab x 8 (fp32 logits and their gradient)
plus 10% for the CUDA context and fragmentation.

Time: 6 x N FLOPs per token for a full fine-tune and 4 x N for LoRA (the frozen weights need no weight
gradient), over the run's tokens, at an assumed fraction (MFU) of the GPU's peak, unless a measured throughput is
given (a previous run of the same base model on the same kind of device).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Shapes of well-known base models, so that an estimate works offline before their weights are downloaded.
KNOWN_SHAPES: dict[str, dict] = {
    "meta-llama/Llama-3.1-8B-Instruct": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
    },
    "meta-llama/Llama-3.2-3B-Instruct": {
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 28,
        "num_attention_heads": 24,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": True,
    },
    "Qwen/Qwen2.5-7B-Instruct": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
        "attention_bias": True,
    },
    "mistralai/Mistral-7B-Instruct-v0.3": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32768,
        "tie_word_embeddings": False,
    },
}
KNOWN_SHAPES["meta-llama/Llama-3.1-8B"] = KNOWN_SHAPES["meta-llama/Llama-3.1-8B-Instruct"]
GB = 1024**3


@dataclass(frozen=True)
class Shape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool
    attention_bias: bool = False
    head_dim: int | None = None

    @classmethod
    def from_config(cls, config: dict) -> Shape:
        heads = config["num_attention_heads"]
        return cls(
            hidden=config["hidden_size"],
            intermediate=config["intermediate_size"],
            layers=config["num_hidden_layers"],
            heads=heads,
            kv_heads=config.get("num_key_value_heads") or heads,
            vocab=config["vocab_size"],
            tied=bool(config.get("tie_word_embeddings", False)),
            attention_bias=bool(config.get("attention_bias", config.get("model_type") == "qwen2")),
            head_dim=config.get("head_dim"),
        )

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer in one decoder block, by its usual module name."""
        head_dim = self.head_dim or self.hidden // self.heads
        return {
            "q_proj": (self.hidden, self.heads * head_dim),
            "k_proj": (self.hidden, self.kv_heads * head_dim),
            "v_proj": (self.hidden, self.kv_heads * head_dim),
            "o_proj": (self.heads * head_dim, self.hidden),
            "gate_proj": (self.hidden, self.intermediate),
            "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }

    def total_params(self) -> int:
        linears = self.linears()
        per_layer = sum(i * o for i, o in linears.values()) + 2 * self.hidden
        if self.attention_bias:
            per_layer += sum(linears[name][1] for name in ("q_proj", "k_proj", "v_proj"))
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return embeddings + self.layers * per_layer + self.hidden

    def lora_params(self, rank: int, targets: list[str] | tuple[str, ...]) -> int:
        linears = self.linears()
        return self.layers * sum(rank * sum(linears[name]) for name in targets if name in linears)


def memory(
    *,
    shape: Shape,
    method: str,
    trainable: int,
    dtype_bytes: int,
    micro_batch: int,
    seq_len: int,
) -> dict:
    """Peak memory of one training process, in GB, by part."""
    total = shape.total_params()
    parts = {"weights": total * dtype_bytes}
    if method == "lora":
        parts["trainable_and_optimizer"] = trainable * 16
    else:
        parts["trainable_and_optimizer"] = total * dtype_bytes * 3
    parts["activations"] = micro_batch * seq_len * shape.hidden * shape.layers * 17 * dtype_bytes
    parts["logits"] = micro_batch * seq_len * shape.vocab * 8
    subtotal = sum(parts.values())
    parts["overhead"] = subtotal * 0.10
    result = {name: round(value / GB, 2) for name, value in parts.items()}
    result["total"] = round(subtotal * 1.10 / GB, 2)
    return result


def gpus_needed(total_gb: float, gpu_memory_gb: float, usable: float = 0.9) -> int:
    """GPUs of `gpu_memory_gb` each to hold the run, with weights and optimizer states sharded (FSDP/ZeRO-3)."""
    return max(1, math.ceil(total_gb / (gpu_memory_gb * usable)))


def seconds(*, tokens: int, total_params: int, method: str, flops: float, mfu: float) -> float:
    """Time to push `tokens` through training at `mfu` of a device that peaks at `flops` per second."""
    per_token = (6 if method == "full" else 4) * total_params
    return tokens * per_token / (flops * mfu)
