"""One process of a multi-process run, started by torchrun (`sft.run_distributed` starts it). No Django.

    python -m torch.distributed.run --standalone --nproc_per_node N -m training.recipes.launch <spec.json>

The spec names the config, the JSONL files of training and validation rows, and the output folder. The first
process appends each progress event to `<out_dir>/events.jsonl`; every process stops when `<out_dir>/STOP` appears;
the first process writes `<out_dir>/result.json` at the end. Each process dies with its parent (PR_SET_PDEATHSIG),
so that a worker killed mid-run leaves no orphan training on the GPUs.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from .process import die_with_parent


def read_rows(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def main(spec_path: str) -> None:
    from .sft import SFTConfig, run

    die_with_parent()
    spec = json.loads(Path(spec_path).read_text())
    config = SFTConfig(**{**spec["config"], "lora_targets": tuple(spec["config"]["lora_targets"])})
    out_dir = Path(spec["out_dir"])
    events = out_dir / "events.jsonl"
    stop = out_dir / "STOP"

    def on_log(entry: dict) -> None:
        with events.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(entry) + "\n")

    result = run(
        config, read_rows(spec["train"]), read_rows(spec["val"]), out_dir, on_log=on_log, should_stop=stop.exists
    )
    if int(os.environ.get("RANK", "0")) == 0:
        fields = {key: (str(value) if isinstance(value, Path) else value) for key, value in asdict(result).items()}
        (out_dir / "result.json").write_text(json.dumps(fields))


if __name__ == "__main__":
    main(sys.argv[1])
