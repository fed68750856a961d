"""Celery: Redis when REDIS_URL is set, else kombu's filesystem transport so `make run` needs no server.

Job state lives in database rows, never in Celery's result backend. The broker's folders are made when Django
starts (core/apps.py), not here."""

import os

from .env import VAR_DIR, env_bool
from .fineline import FINELINE_RECOVERY_INTERVAL

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Longer than the longest training job, so Redis never redelivers a job that is still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 172800))}
else:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # kombu's default is ./control, beside the code
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Time limits (seconds) on every task, so that no job holds a worker for ever. At the soft limit the task gets an
# exception and its job ends `failed`, saying which limit it reached; a task still running
# FINELINE_TASK_TIME_LIMIT_GRACE seconds later has its worker process killed (the prefork pool enforces both limits;
# `--pool solo` enforces neither).
# Quality scans, queued imports, search indexing and recovery get FINELINE_TASK_SOFT_TIME_LIMIT (500,000 examples
# scan in about 2 minutes); training runs and merges, evaluations and chats ("try the model") their own. Keep
# CELERY_VISIBILITY_TIMEOUT above the longest limit plus the grace, or Redis hands a running job to a second worker.
FINELINE_TASK_SOFT_TIME_LIMIT = float(os.environ.get("FINELINE_TASK_SOFT_TIME_LIMIT", 60 * 60))
FINELINE_TRAINING_SOFT_TIME_LIMIT = float(os.environ.get("FINELINE_TRAINING_SOFT_TIME_LIMIT", 46 * 60 * 60))
FINELINE_EVALUATION_SOFT_TIME_LIMIT = float(os.environ.get("FINELINE_EVALUATION_SOFT_TIME_LIMIT", 12 * 60 * 60))
FINELINE_CHAT_SOFT_TIME_LIMIT = float(os.environ.get("FINELINE_CHAT_SOFT_TIME_LIMIT", 5 * 60))
FINELINE_TASK_TIME_LIMIT_GRACE = float(os.environ.get("FINELINE_TASK_TIME_LIMIT_GRACE", 5 * 60))
CELERY_TASK_SOFT_TIME_LIMIT = FINELINE_TASK_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = FINELINE_TASK_SOFT_TIME_LIMIT + FINELINE_TASK_TIME_LIMIT_GRACE
CELERY_TASK_ANNOTATIONS = {
    name: {"soft_time_limit": limit, "time_limit": limit + FINELINE_TASK_TIME_LIMIT_GRACE}
    for name, limit in {
        "training.run": FINELINE_TRAINING_SOFT_TIME_LIMIT,
        "training.merge": FINELINE_TRAINING_SOFT_TIME_LIMIT,
        "evaluation.run": FINELINE_EVALUATION_SOFT_TIME_LIMIT,
        "training.chat": FINELINE_CHAT_SOFT_TIME_LIMIT,
    }.items()
}
# Requeues the runs, evaluations and imports whose worker died (their lease expired).
CELERY_BEAT_SCHEDULE = {
    "recover-training-runs": {
        "task": "training.recover",
        "schedule": FINELINE_RECOVERY_INTERVAL,
        "options": {"queue": "default", "expires": FINELINE_RECOVERY_INTERVAL},
    },
    "recover-evaluations": {
        "task": "evaluation.recover",
        "schedule": FINELINE_RECOVERY_INTERVAL,
        "options": {"queue": "default", "expires": FINELINE_RECOVERY_INTERVAL},
    },
    "recover-generation-jobs": {
        "task": "evaluation.generation_recover",
        "schedule": FINELINE_RECOVERY_INTERVAL,
        "options": {"queue": "default", "expires": FINELINE_RECOVERY_INTERVAL},
    },
    "recover-imports": {
        "task": "curation.imports_recover",
        "schedule": FINELINE_RECOVERY_INTERVAL,
        "options": {"queue": "default", "expires": FINELINE_RECOVERY_INTERVAL},
    },
}
