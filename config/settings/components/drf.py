"""Django REST framework, knox tokens and the OpenAPI schema (drf-spectacular)."""

import os
from datetime import timedelta

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
