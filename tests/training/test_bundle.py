"""The deployment bundle: a vllm serve command and an Ollama Modelfile that fit the adapter."""

import json

from training import bundle


def test_vllm_command_and_modelfile_for_an_adapter(tmp_path):
    adapter = tmp_path / "my adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 32}))
    written = bundle.write(
        out_dir=tmp_path,
        base_model="meta-llama/Llama-3.1-8B-Instruct",
        adapter_dir=adapter,
        name="triage-run7",
        max_model_len=2048,
        system_prompt='Say "hi".',
    )
    command = written["vllm_command"]
    assert command.startswith("vllm serve meta-llama/Llama-3.1-8B-Instruct --enable-lora --lora-modules")
    assert f"'triage-run7={adapter}'" in command  # quoted: the path has a space
    assert "--max-lora-rank 32 --max-model-len 2048 --gpu-memory-utilization 0.90" in command
    assert "--tensor-parallel-size 1 --api-key $VLLM_API_KEY" in command
    assert written["ollama_modelfile"].splitlines()[:2] == [
        "FROM meta-llama/Llama-3.1-8B-Instruct",
        f"ADAPTER {adapter}",
    ]
    assert (tmp_path / "deploy" / "Modelfile").read_text() == written["ollama_modelfile"]


def test_a_merged_model_is_served_without_lora_flags(tmp_path):
    command = bundle.vllm_command(
        base_model="base", adapter_dir=None, name="", max_model_len=1024, merged_dir=tmp_path / "merged"
    )
    assert command.startswith(f"vllm serve {tmp_path / 'merged'} --max-model-len 1024") and "lora" not in command
