"""Settings shared by every environment.

Everything comes from the environment, with an embedded default that needs no server: SQLite and a Celery broker
on the filesystem. DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("FINELINE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "csp",
    "core",
    "curation",
    "training",
    "evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # First of all that may read a body: a chunked one is read (or refused) here.
    "config.middleware.ReadChunkedBodies",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.middleware.RejectNulCharacters",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: answers a locked-out login (browser, admin, API token) with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'fineline.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves several experts at once (runserver's threads, the worker): write transactions
    # start IMMEDIATE so that two of them queue for the lock instead of failing with "database is locked" when a
    # reader tries to become a writer, and WAL lets pages read while the worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Sessions read from the cache (Redis in production) and written through to the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out account or address before any password is hashed (hashing is the costly part).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "curation:project_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON bodies only (the import endpoint adds JSONL and multipart uploads): form encodings would turn any value
    # into a string and let a malformed body through.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    # `format` is the import format (auto, openai, sharegpt...), not a renderer override.
    "URL_FORMAT_OVERRIDE": None,
}
_token_days = float(os.environ.get("FINELINE_API_TOKEN_DAYS", 90))
REST_KNOX = {
    # Integrators' tokens expire after FINELINE_API_TOKEN_DAYS (0: never) unless revoked first; only a SHA-512
    # digest is stored.
    "TOKEN_TTL": timedelta(days=_token_days) if _token_days > 0 else None,
    "TOKEN_PREFIX": "fl_",
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Fineline API",
    "DESCRIPTION": "Curate chat-format training data, train LoRA fine-tunes, and prove they beat the baselines.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Self-hosted means no CDN: Swagger UI is served from the sidecar package.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ReviewStatusEnum": "curation.models.ReviewStatus",
        "ImportStatusEnum": "curation.models.ImportJob.Status",
        "TrainingRunStatusEnum": "training.models.TrainingRun.Status",
        "EvaluationStatusEnum": "evaluation.models.Evaluation.Status",
    },
}

# Celery: Redis when REDIS_URL is set, else kombu's filesystem transport so `make run` needs no server.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Longer than the longest training job, so Redis never redelivers a job that is still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 172800))}
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # kombu's default is ./control, beside the code
        "store_processed": False,
    }
# A shared cache (Redis) when there is one, so that every web process sees the same invalidations.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "fineline"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Job state lives in database rows, never in Celery's result backend.
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
# Quality scans, search indexing and recovery get FINELINE_TASK_SOFT_TIME_LIMIT (500,000 examples scan in about
# 2 minutes); training runs and merges, and evaluations, their own. Keep CELERY_VISIBILITY_TIMEOUT above the longest
# limit plus the grace, or Redis hands a running job to a second worker.
FINELINE_TASK_SOFT_TIME_LIMIT = float(os.environ.get("FINELINE_TASK_SOFT_TIME_LIMIT", 60 * 60))
FINELINE_TRAINING_SOFT_TIME_LIMIT = float(os.environ.get("FINELINE_TRAINING_SOFT_TIME_LIMIT", 46 * 60 * 60))
FINELINE_EVALUATION_SOFT_TIME_LIMIT = float(os.environ.get("FINELINE_EVALUATION_SOFT_TIME_LIMIT", 12 * 60 * 60))
FINELINE_TASK_TIME_LIMIT_GRACE = float(os.environ.get("FINELINE_TASK_TIME_LIMIT_GRACE", 5 * 60))
CELERY_TASK_SOFT_TIME_LIMIT = FINELINE_TASK_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = FINELINE_TASK_SOFT_TIME_LIMIT + FINELINE_TASK_TIME_LIMIT_GRACE
CELERY_TASK_ANNOTATIONS = {
    name: {"soft_time_limit": limit, "time_limit": limit + FINELINE_TASK_TIME_LIMIT_GRACE}
    for name, limit in {
        "training.run": FINELINE_TRAINING_SOFT_TIME_LIMIT,
        "training.merge": FINELINE_TRAINING_SOFT_TIME_LIMIT,
        "evaluation.run": FINELINE_EVALUATION_SOFT_TIME_LIMIT,
    }.items()
}

# Training runs: a worker holds a run through a lease its heartbeat renews; a run whose lease expired (its worker
# died) is requeued by the periodic recovery task and resumes from its last complete checkpoint, at most
# FINELINE_RUN_MAX_ATTEMPTS starts in all.
FINELINE_RUN_LEASE_SECONDS = int(os.environ.get("FINELINE_RUN_LEASE_SECONDS", 120))
# The same hold on an evaluation: one whose lease expired is requeued and starts over.
FINELINE_EVALUATION_LEASE_SECONDS = int(os.environ.get("FINELINE_EVALUATION_LEASE_SECONDS", 120))
# Processes per run on a GPU node: "auto" is one per visible GPU (DDP under torchrun); a number forces it.
FINELINE_TRAIN_PROCESSES = os.environ.get("FINELINE_TRAIN_PROCESSES", "auto")
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
# FINELINE_VAR_DIR: nothing in the data folder (runs, tiny-local builds, uploads) is ever a model (config/server_paths).
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
}

# Import limits (bulk import is the point, so the body limit is generous).
FINELINE_IMPORT_MAX_BODY_BYTES = int(os.environ.get("FINELINE_IMPORT_MAX_BODY_BYTES", 100 * 1024 * 1024))
FINELINE_IMPORT_MAX_LINE_BYTES = int(os.environ.get("FINELINE_IMPORT_MAX_LINE_BYTES", 2 * 1024 * 1024))
FINELINE_IMPORT_MAX_TOKENS = int(os.environ.get("FINELINE_IMPORT_MAX_TOKENS", 32768))
FINELINE_IMPORT_MAX_DEPTH = int(os.environ.get("FINELINE_IMPORT_MAX_DEPTH", 32))
FINELINE_IMPORT_MAX_REPORTED_ERRORS = int(os.environ.get("FINELINE_IMPORT_MAX_REPORTED_ERRORS", 1000))
# How long an expert holds the example they opened; a lock left by a closed tab is reclaimed after it.
FINELINE_REVIEW_LOCK_SECONDS = int(os.environ.get("FINELINE_REVIEW_LOCK_SECONDS", 15 * 60))
# The review page checks the answer against the output format as the expert types: answers longer than this (in
# characters) are checked when the review is saved instead.
FINELINE_LIVE_CHECK_MAX_CHARS = int(os.environ.get("FINELINE_LIVE_CHECK_MAX_CHARS", 64 * 1024))
# Files bigger than this spill to disk during a multipart upload instead of staying in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# A form or JSON body (not an import: those stream) is read into memory whole: room for one example at the import's
# line limit, twice over; past it, 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(int(2.5 * 1024 * 1024), 2 * FINELINE_IMPORT_MAX_LINE_BYTES)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# --- Security -------------------------------------------------------------------------------------------------------
# Failed logins (browser, admin, API token): after FINELINE_LOGIN_FAILURE_LIMIT failures for one account or from one
# address, that account or address is refused (429, no password checked) for FINELINE_LOGIN_COOLOFF_MINUTES after
# its last failure.
AXES_FAILURE_LIMIT = int(os.environ.get("FINELINE_LOGIN_FAILURE_LIMIT", 10))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("FINELINE_LOGIN_COOLOFF_MINUTES", 15)))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
AXES_VERBOSE = False
# How many reverse proxies stand in front of the app (docker-compose: 1, nginx): the client's address is then the
# one that many entries from the right of X-Forwarded-For; with 0 the header is ignored (anyone could forge it).
FINELINE_PROXY_COUNT = int(os.environ.get("FINELINE_PROXY_COUNT", 0))

# Content-Security-Policy: scripts, styles and everything else from this origin only (no inline code anywhere).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
