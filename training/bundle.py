"""The deployment bundle of a finished run: a `vllm serve` command and an Ollama Modelfile. Pure Python."""

from __future__ import annotations

import json
import shlex
from pathlib import Path


def adapter_rank(adapter_dir: Path) -> int:
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    return int(config.get("r", 16))


def vllm_command(
    *, base_model: str, adapter_dir: Path | None, name: str, max_model_len: int, merged_dir: Path | None = None
) -> str:
    """A ready `vllm serve` line: the base model with the LoRA adapter (or the merged model), placeholders for the
    parts that depend on the serving machine."""
    parts = ["vllm", "serve", str(merged_dir or base_model)]
    if adapter_dir is not None and merged_dir is None:
        parts += [
            "--enable-lora",
            "--lora-modules",
            f"{name}={adapter_dir}",
            "--max-lora-rank",
            str(max(8, adapter_rank(adapter_dir))),
        ]
    parts += [
        "--max-model-len",
        str(max_model_len),
        "--gpu-memory-utilization",
        "0.90",
        "--tensor-parallel-size",
        "1",
        "--api-key",
        "CHANGE-ME",
    ]
    return " ".join(shlex.quote(part) if part != "CHANGE-ME" else "$VLLM_API_KEY" for part in parts)


def ollama_modelfile(*, base_model: str, adapter_dir: Path | None, system_prompt: str) -> str:
    lines = [f"FROM {base_model}"]
    if adapter_dir is not None:
        lines.append(f"ADAPTER {adapter_dir}")
    if system_prompt:
        lines.append('SYSTEM """' + system_prompt.replace('"""', '\\"\\"\\"') + '"""')
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


def write(
    *, out_dir: Path, base_model: str, adapter_dir: Path | None, name: str, max_model_len: int, system_prompt: str
) -> dict[str, str]:
    """Write deploy/serve-vllm.sh and deploy/Modelfile into the run's folder; returns what they contain."""
    folder = Path(out_dir) / "deploy"
    folder.mkdir(parents=True, exist_ok=True)
    command = vllm_command(base_model=base_model, adapter_dir=adapter_dir, name=name, max_model_len=max_model_len)
    modelfile = ollama_modelfile(base_model=base_model, adapter_dir=adapter_dir, system_prompt=system_prompt)
    (folder / "serve-vllm.sh").write_text(
        "#!/bin/sh\n# Set VLLM_API_KEY; raise --tensor-parallel-size on a node with several GPUs.\n" + command + "\n"
    )
    (folder / "Modelfile").write_text(modelfile)
    return {"vllm_command": command, "ollama_modelfile": modelfile, "folder": str(folder)}


def write_merged(*, out_dir: Path, merged_dir: Path, max_model_len: int, system_prompt: str) -> dict[str, str]:
    """The same bundle for the merged model: deploy/serve-vllm-merged.sh and deploy/Modelfile.merged."""
    folder = Path(out_dir) / "deploy"
    folder.mkdir(parents=True, exist_ok=True)
    command = vllm_command(
        base_model=str(merged_dir), adapter_dir=None, name="", max_model_len=max_model_len, merged_dir=merged_dir
    )
    modelfile = ollama_modelfile(base_model=str(merged_dir), adapter_dir=None, system_prompt=system_prompt)
    (folder / "serve-vllm-merged.sh").write_text("#!/bin/sh\n# Set VLLM_API_KEY.\n" + command + "\n")
    (folder / "Modelfile.merged").write_text(modelfile)
    return {"merged_dir": str(merged_dir), "vllm_command_merged": command, "ollama_modelfile_merged": modelfile}
