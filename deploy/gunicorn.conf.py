"""gunicorn as the deployment runs it: docker-compose's `web`, the Dockerfile's CMD and the tests that start the web
app all load this file (`gunicorn -c deploy/gunicorn.conf.py config.wsgi:application`).

Sync workers read a request's headers and body straight off the socket, so a client that sends them slowly holds a
worker for as long as it likes: they must only ever talk to a buffering proxy (nginx in docker-compose.yml, whose
template is deploy/nginx/default.conf.template), never to clients. nginx hands over a request only once it holds all
of it, and takes the answer as fast as the worker writes it.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "sync"
workers = int(os.environ.get("GUNICORN_WORKERS", 3))
# A 100 MB import of a large project is parsed and written inside its request; nginx's proxy_read_timeout matches.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 600))
graceful_timeout = 30


def post_worker_init(worker):
    """Import the URLconf, and every view module behind it, while the worker starts rather than in its first request,
    which took 0.7 s longer than the next ones (a health check right after a start or a restart paid it)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - evaluated for its imports
