"""GPU check, for a machine with an NVIDIA GPU (one 10-minute command):

1. the matmul ceiling: bf16 8192^3 matmuls, measured TFLOP/s;
2. LoRA training steps (r=16, q/k/v/o) on a randomly initialised Llama-3.1-8B-shaped model in bf16 at sequence
   length 2048: tokens/s, MFU against the measured ceiling, peak memory, and the pre-flight's memory estimate
   beside it;
3. one tiny-local run end to end on CUDA with the project's recipe: build, LoRA, generate, format accuracy.

Model FLOPs per token of a LoRA step: 4 x N (forward, and backward to the activations; the frozen weights need no
weight gradient) + 8 x layers x hidden x seq (causal attention scores, forward and backward).

Run: `.venv/bin/python bench/gpu_check.py [--batch 4] [--steps 10]`; `--smoke` runs the same code small on the CPU.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation import demo, formats  # noqa: E402
from training.recipes import estimate, sft, tiny_local  # noqa: E402


def matmul_ceiling(device, dtype, size: int, repeats: int = 20) -> float:
    import torch

    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def lora_steps(shape_config: dict, device, dtype, batch: int, seq: int, steps: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(**shape_config, max_position_embeddings=max(seq, 2048)))
    torch.set_default_dtype(previous)
    model = get_peft_model(
        model, LoraConfig(r=16, lora_alpha=32, target_modules=list(sft.DEFAULT_TARGETS), task_type="CAUSAL_LM")
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(shape_config["vocab_size"], (batch, seq), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step():
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    shape = estimate.Shape.from_config(shape_config)
    flops_per_token = 4 * shape.total_params() + 8 * shape.layers * shape.hidden * seq
    predicted = estimate.memory(
        shape=shape, method="lora", trainable=trainable, dtype_bytes=2, micro_batch=batch, seq_len=seq
    )
    peak = torch.cuda.max_memory_allocated() / estimate.GB if device.type == "cuda" else None
    return {
        "params": shape.total_params(),
        "trainable": trainable,
        "step_seconds": seconds,
        "tokens_per_second": batch * seq / seconds,
        "flops_per_second": batch * seq * flops_per_token / seconds,
        "peak_gb": peak,
        "predicted_gb": predicted["total"],
    }


def tiny_local_end_to_end(steps: int) -> dict:
    rows = demo.generate()
    train, val, test = rows[:640], rows[640:700], rows[700:800]
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        documents = tiny_local.corpus_documents(row["messages"] for row in train)
        base = str(tiny_local.build(documents, Path(folder) / "models"))
        built = time.perf_counter() - started
        log = []
        config = sft.SFTConfig(base_model=base, max_steps=steps, batch_size=16, eval_every=40, checkpoint_every=40)
        result = sft.run(config, train, val, Path(folder) / "run", on_log=log.append)
        trained = time.perf_counter() - started - built
        model, tokenizer = sft.load_for_inference(base, result.adapter_dir)
        answers = sft.generate(model, tokenizer, [row["messages"][:-1] for row in test])
    fits = formats.answer_checker(demo.OUTPUT_FORMAT)
    start = next(entry for entry in log if entry["event"] == "start")
    return {
        "device": start["device"],
        "dtype": start["dtype"],
        "build_seconds": built,
        "train_seconds": trained,
        "steps": result.steps,
        "format_accuracy": sum(map(fits, answers)) / len(answers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--tiny-steps", type=int, default=80)
    parser.add_argument("--smoke", action="store_true", help="a small shape on the CPU, to check the script itself")
    args = parser.parse_args()
    import torch

    if args.smoke:
        device, dtype, size = torch.device("cpu"), torch.float32, 512
        shape = {**estimate.KNOWN_SHAPES["meta-llama/Llama-3.1-8B-Instruct"], "hidden_size": 256,
                 "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 8,
                 "num_key_value_heads": 2, "vocab_size": 4096}  # fmt: skip
        args.seq, args.batch, args.steps, args.tiny_steps = 128, 2, 3, 20
    else:
        if not torch.cuda.is_available():
            sys.exit("No CUDA device: this check is for a GPU node (use --smoke to try the script on a CPU).")
        device, dtype, size = torch.device("cuda"), torch.bfloat16, 8192
        shape = estimate.KNOWN_SHAPES["meta-llama/Llama-3.1-8B-Instruct"]
        memory = torch.cuda.get_device_properties(0).total_memory / 2**30
        print(f"GPU: {torch.cuda.get_device_name()} ({memory:.0f} GiB), torch {torch.__version__}")
    ceiling = matmul_ceiling(device, dtype, size)
    print(f"matmul ceiling ({dtype}, {size}^3): {ceiling / 1e12:.1f} TFLOP/s")
    step = lora_steps(shape, device, dtype, args.batch, args.seq, args.steps)
    print(
        f"LoRA step, {step['params'] / 1e9:.2f}B params ({step['trainable']:,} trainable), batch {args.batch} x "
        f"{args.seq}: {step['step_seconds']:.3f} s/step, {step['tokens_per_second']:,.0f} tokens/s, "
        f"MFU {step['flops_per_second'] / ceiling:.1%} of the measured ceiling"
    )
    if step["peak_gb"] is not None:
        print(f"peak memory {step['peak_gb']:.1f} GB; the pre-flight estimated {step['predicted_gb']:.1f} GB")
    del step
    if device.type == "cuda":
        torch.cuda.empty_cache()
    tiny = tiny_local_end_to_end(args.tiny_steps)
    print(
        f"tiny-local end to end on {tiny['device']} ({tiny['dtype']}): built in {tiny['build_seconds']:.0f} s, "
        f"{tiny['steps']} LoRA steps in {tiny['train_seconds']:.0f} s, format accuracy {tiny['format_accuracy']:.0%}"
    )


if __name__ == "__main__":
    main()
