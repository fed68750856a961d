"""The product's own settings (FINELINE_*): training runs and the GPU, evaluation, imports and review."""

import os

from django.core.exceptions import ImproperlyConfigured

# Training runs: a worker holds a run through a lease its heartbeat renews; a run whose lease expired (its worker
# died) is requeued by the periodic recovery task and resumes from its last complete checkpoint, at most
# FINELINE_RUN_MAX_ATTEMPTS starts in all.
FINELINE_RUN_LEASE_SECONDS = int(os.environ.get("FINELINE_RUN_LEASE_SECONDS", 120))
# The same hold on an evaluation: one whose lease expired is requeued and starts over.
FINELINE_EVALUATION_LEASE_SECONDS = int(os.environ.get("FINELINE_EVALUATION_LEASE_SECONDS", 120))
# Processes per run on a GPU node: "auto" is one per visible GPU (DDP under torchrun); a number forces it.
FINELINE_TRAIN_PROCESSES = os.environ.get("FINELINE_TRAIN_PROCESSES", "auto")
# Where runs' checkpoints, adapters and merged weights and tiny-local's builds live, reached by every node
# (core/store.py): a local folder (unset: $FINELINE_VAR_DIR/store, enough for one host) or an S3-compatible bucket, s3://bucket/prefix,
# with FINELINE_S3_ENDPOINT_URL for MinIO, Ceph or another non-AWS endpoint and the credentials in AWS_ACCESS_KEY_ID
# and AWS_SECRET_ACCESS_KEY. With several GPU nodes it must be a bucket (or a folder all of them mount).
FINELINE_ARTIFACT_STORE = os.environ.get("FINELINE_ARTIFACT_STORE", "").strip()
FINELINE_S3_ENDPOINT_URL = os.environ.get("FINELINE_S3_ENDPOINT_URL", "").strip()
FINELINE_RUN_MAX_ATTEMPTS = int(os.environ.get("FINELINE_RUN_MAX_ATTEMPTS", 3))
FINELINE_RECOVERY_INTERVAL = float(os.environ.get("FINELINE_RECOVERY_INTERVAL", 30))
# The base models the launch form offers (a run may also name a Hugging Face id, or a folder under
# FINELINE_MODELS_DIR). Set FINELINE_BASE_MODELS to a comma-separated list of ids or folders to replace the list.
FINELINE_BASE_MODELS = [
    model.strip()
    for model in os.environ.get(
        "FINELINE_BASE_MODELS",
        "tiny-local,meta-llama/Llama-3.1-8B-Instruct,meta-llama/Llama-3.2-3B-Instruct,Qwen/Qwen2.5-7B-Instruct,"
        "mistralai/Mistral-7B-Instruct-v0.3",
    ).split(",")
    if model.strip()
]
# Local model folders a run may start from (or a project count tokens with): those under this folder, named by their
# absolute path. Unset (the default), only the list above and Hugging Face ids are accepted. It must lie outside
# FINELINE_VAR_DIR: nothing in the data folder (runs, tiny-local builds, uploads) is ever a model
# (core/server_paths.py).
FINELINE_MODELS_DIR = os.environ.get("FINELINE_MODELS_DIR", "").strip()
# Who may create projects (and become their lead): "staff" (the default: accounts with is_staff, set in the admin or
# by createsuperuser) or "any" signed-in user.
FINELINE_PROJECT_CREATORS = os.environ.get("FINELINE_PROJECT_CREATORS", "staff").strip().lower()
if FINELINE_PROJECT_CREATORS not in ("staff", "any"):
    raise ImproperlyConfigured(f"FINELINE_PROJECT_CREATORS is staff or any, not {FINELINE_PROJECT_CREATORS!r}.")
# The GPU a node has, for the pre-flight's memory and time estimates: memory (GB), peak bf16 dense TFLOP/s, and
# the share of that peak a LoRA/full fine-tune reaches (MFU). Defaults: an H100 80 GB SXM at 35% MFU.
FINELINE_GPU_NAME = os.environ.get("FINELINE_GPU_NAME", "H100 80GB")
FINELINE_GPU_MEMORY_GB = float(os.environ.get("FINELINE_GPU_MEMORY_GB", 80))
FINELINE_GPU_TFLOPS = float(os.environ.get("FINELINE_GPU_TFLOPS", 989))
FINELINE_GPU_MFU = float(os.environ.get("FINELINE_GPU_MFU", 0.35))
# Training throughput of a CPU node on tiny-local, until a finished run has measured it (tokens/s).
FINELINE_CPU_TOKENS_PER_SECOND = float(os.environ.get("FINELINE_CPU_TOKENS_PER_SECOND", 5000))
# Evaluation. The frontier baseline and the judge are any OpenAI-compatible endpoints (OpenAI, vLLM, Ollama...);
# unset, the frontier row says "not configured" and relevance / hallucination use their labelled fallbacks.
FINELINE_FRONTIER_BASE_URL = os.environ.get("FINELINE_FRONTIER_BASE_URL", "")
FINELINE_FRONTIER_MODEL = os.environ.get("FINELINE_FRONTIER_MODEL", "gpt-4o-mini")
FINELINE_FRONTIER_API_KEY = os.environ.get("FINELINE_FRONTIER_API_KEY", "")
FINELINE_JUDGE_BASE_URL = os.environ.get("FINELINE_JUDGE_BASE_URL", "")
FINELINE_JUDGE_MODEL = os.environ.get("FINELINE_JUDGE_MODEL", "gpt-4o-mini")
FINELINE_JUDGE_API_KEY = os.environ.get("FINELINE_JUDGE_API_KEY", "")
# Prices: the frontier model's USD per million input / output tokens, and a self-hosting GPU's USD per hour.
FINELINE_FRONTIER_PRICE_IN = float(os.environ.get("FINELINE_FRONTIER_PRICE_IN", 0.15))
FINELINE_FRONTIER_PRICE_OUT = float(os.environ.get("FINELINE_FRONTIER_PRICE_OUT", 0.60))
FINELINE_GPU_HOURLY_USD = float(os.environ.get("FINELINE_GPU_HOURLY_USD", 2.50))
FINELINE_EVAL_BATCH_SIZE = int(os.environ.get("FINELINE_EVAL_BATCH_SIZE", 32))
FINELINE_EVAL_MAX_NEW_TOKENS = int(os.environ.get("FINELINE_EVAL_MAX_NEW_TOKENS", 128))
# Generated candidates for a label that lacks examples (evaluation/generation.py): at most this many a job, each
# written from this many approved seed examples of the label, with this many new tokens from a local model; a worker
# holds the job through a lease like an evaluation (a lost one starts over: nothing is written before its end).
FINELINE_GENERATION_MAX_COUNT = int(os.environ.get("FINELINE_GENERATION_MAX_COUNT", 100))
FINELINE_GENERATION_SEEDS = int(os.environ.get("FINELINE_GENERATION_SEEDS", 4))
FINELINE_GENERATION_MAX_NEW_TOKENS = int(os.environ.get("FINELINE_GENERATION_MAX_NEW_TOKENS", 512))
FINELINE_GENERATION_LEASE_SECONDS = int(os.environ.get("FINELINE_GENERATION_LEASE_SECONDS", 120))
# "Try the model": a chat answered by a `chat`-queue worker. The API waits this long for the answers (200) before it
# answers 202 with the chat's URL to poll; answers stop at this many new tokens; a conversation is refused past
# this many characters.
FINELINE_CHAT_WAIT_SECONDS = float(os.environ.get("FINELINE_CHAT_WAIT_SECONDS", 20))
FINELINE_CHAT_MAX_NEW_TOKENS = int(os.environ.get("FINELINE_CHAT_MAX_NEW_TOKENS", 128))
FINELINE_CHAT_MAX_CHARS = int(os.environ.get("FINELINE_CHAT_MAX_CHARS", 32000))

# Import limits (bulk import is the point, so the body limit is generous).
FINELINE_IMPORT_MAX_BODY_BYTES = int(os.environ.get("FINELINE_IMPORT_MAX_BODY_BYTES", 100 * 1024 * 1024))
FINELINE_IMPORT_MAX_LINE_BYTES = int(os.environ.get("FINELINE_IMPORT_MAX_LINE_BYTES", 2 * 1024 * 1024))
FINELINE_IMPORT_MAX_TOKENS = int(os.environ.get("FINELINE_IMPORT_MAX_TOKENS", 32768))
FINELINE_IMPORT_MAX_DEPTH = int(os.environ.get("FINELINE_IMPORT_MAX_DEPTH", 32))
FINELINE_IMPORT_MAX_REPORTED_ERRORS = int(os.environ.get("FINELINE_IMPORT_MAX_REPORTED_ERRORS", 1000))
# A body over this many bytes is not imported within its request: it is spooled to $FINELINE_VAR_DIR/imports/ and
# the answer is 202 with the queued job, which a worker on the `default` queue imports (it must see the same
# FINELINE_VAR_DIR). A worker holds it through a lease (FINELINE_IMPORT_LEASE_SECONDS) like a training run: one
# whose worker died is started once more, then failed.
FINELINE_IMPORT_SYNC_MAX_BYTES = int(os.environ.get("FINELINE_IMPORT_SYNC_MAX_BYTES", 4 * 1024 * 1024))
FINELINE_IMPORT_LEASE_SECONDS = int(os.environ.get("FINELINE_IMPORT_LEASE_SECONDS", 120))
# How often a running queued import writes its progress (lines and bytes read) and renews its lease.
FINELINE_IMPORT_PROGRESS_SECONDS = float(os.environ.get("FINELINE_IMPORT_PROGRESS_SECONDS", 1.0))
# How long an expert holds the example they opened; a lock left by a closed tab is reclaimed after it.
FINELINE_REVIEW_LOCK_SECONDS = int(os.environ.get("FINELINE_REVIEW_LOCK_SECONDS", 15 * 60))
# The review page checks the answer against the output format as the expert types: answers longer than this (in
# characters) are checked when the review is saved instead.
FINELINE_LIVE_CHECK_MAX_CHARS = int(os.environ.get("FINELINE_LIVE_CHECK_MAX_CHARS", 64 * 1024))
