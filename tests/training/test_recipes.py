"""The training recipe on `tiny-local`, for real on the CPU: it learns the format, reloads, packs and resumes."""

import shutil
from pathlib import Path

import pytest

from curation import demo, formats
from training.recipes import sft, tiny_local

pytestmark = pytest.mark.slow

ROWS = demo.generate()
TRAIN, VAL, TEST = ROWS[:640], ROWS[640:700], ROWS[700:760]
FITS = formats.answer_checker(demo.OUTPUT_FORMAT)


@pytest.fixture(scope="session")
def base(tmp_path_factory):
    documents = tiny_local.corpus_documents(row["messages"] for row in TRAIN)
    return str(tiny_local.build(documents, tmp_path_factory.mktemp("models")))


def config(base, **overrides):
    values = {
        "base_model": base,
        "max_steps": 80,
        "learning_rate": 5e-3,
        "batch_size": 16,
        "eval_every": 30,
        "checkpoint_every": 20,
    }
    values.update(overrides)
    return sft.SFTConfig(**values)


def test_tiny_local_is_cached_and_its_template_supervises_only_the_answer(base, tmp_path):
    documents = tiny_local.corpus_documents(row["messages"] for row in TRAIN)
    again = tiny_local.build(documents, Path(base).parent)
    assert str(again) == base  # same corpus and settings: the cached model, not a new one
    tokenizer = sft.load_tokenizer(base)
    ids, labels = sft.encode(tokenizer, [ROWS[0]], 512)[0]
    supervised = tokenizer.decode([token for token, label in zip(ids, labels, strict=True) if label != -100])
    assert supervised == ROWS[0]["messages"][-1]["content"] + tiny_local.END


def test_lora_learns_the_answer_format_and_the_adapter_reloads(base, tmp_path):
    log = []
    result = sft.run(config(base), TRAIN, VAL, tmp_path / "run", on_log=log.append)
    losses = [entry["loss"] for entry in log if entry["event"] == "step"]
    early, late = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert result.steps == 80 and late < early * 0.75, losses
    start = next(entry for entry in log if entry["event"] == "start")
    assert start["trainable_params"] == 65536 and start["trainable_params"] / start["total_params"] < 0.06
    assert any("val_token_accuracy" in entry for entry in log)
    assert (result.adapter_dir / "adapter_model.safetensors").exists()

    model, tokenizer = sft.load_for_inference(base, result.adapter_dir)
    answers = sft.generate(model, tokenizer, [row["messages"][:-1] for row in TEST])
    assert sum(map(FITS, answers)) / len(answers) >= 0.95
    merged, _ = sft.load_for_inference(base, result.adapter_dir, merge=True)
    assert sft.generate(merged, tokenizer, [row["messages"][:-1] for row in TEST[:10]]) == answers[:10]
    untuned, _ = sft.load_for_inference(base)
    assert sum(map(FITS, sft.generate(untuned, tokenizer, [r["messages"][:-1] for r in TEST[:10]]))) <= 2
    # A conversation longer than the model's 1,024 positions keeps its newest tokens, leaving room for the answer.
    long = [{"role": "user", "content": "The export button does nothing. " * 400}]
    text = tokenizer.apply_chat_template(long, tokenize=False, add_generation_prompt=True)
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) > 1024
    prompts = []
    hook = untuned.register_forward_pre_hook(
        lambda module, args, kwargs: prompts.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    (answer,) = sft.generate(untuned, tokenizer, [long], max_new_tokens=8)
    hook.remove()
    assert prompts[0] == 1024 - 8 and isinstance(answer, str)


def test_a_cancelled_run_resumes_from_its_last_complete_checkpoint(base, tmp_path):
    out = tmp_path / "run"
    first = []
    result = sft.run(
        config(base, max_steps=40),
        TRAIN,
        VAL,
        out,
        on_log=first.append,
        should_stop=lambda: sum(1 for e in first if e["event"] == "step") >= 25,
    )
    assert result.cancelled and result.steps == 25 and result.adapter_dir is None
    assert sft.latest_checkpoint(out).name == "step-20"
    (out / "checkpoints" / "step-30").mkdir()  # a checkpoint cut off mid-write: no COMPLETE marker
    second = []
    result = sft.run(config(base, max_steps=40), TRAIN, VAL, out, on_log=second.append)
    assert next(entry for entry in second if entry["event"] == "start")["resumed_from"] == "step-20"
    assert [e["step"] for e in second if e["event"] == "step"] == list(range(21, 41))
    assert result.steps == 40 and result.adapter_dir is not None
    assert not (out / "checkpoints" / "step-20.tmp").exists()


def test_packing_fills_the_blocks(base):
    tokenizer = sft.load_tokenizer(base)
    encoded = sft.encode(tokenizer, TRAIN, 512)
    blocks, efficiency = sft.pack(encoded, 1024, tokenizer.pad_token_id)
    assert efficiency >= 0.95
    assert sum(len(ids) for ids, _, _ in blocks) == sum(len(ids) for ids, _ in encoded)
    assert all(len(ids) <= 1024 for ids, _, _ in blocks)


def test_full_fine_tuning_and_packing_run_end_to_end(base, tmp_path):
    result = sft.run(
        config(base, method="full", max_steps=6, packing=True, learning_rate=1e-3), TRAIN, VAL, tmp_path / "full"
    )
    assert result.model_dir is not None and result.trainable_params == result.total_params
    shutil.rmtree(tmp_path / "full")
