#!/usr/bin/env bash
# Start a Celery worker (the default and gpu queues, with the periodic jobs), a second one for the chats ("try the
# model", so that one never waits behind a training) and the web app together; Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
trap 'trap - EXIT INT TERM; kill 0' EXIT INT TERM
$BIN/celery -A config worker --queues default,gpu --pool solo --loglevel WARNING --beat &
$BIN/celery -A config worker --queues chat --pool solo --hostname chat@%h --loglevel WARNING &
echo
echo "Fineline is starting on http://${HOST:-127.0.0.1}:${PORT:-8000}/  (API docs: /api/docs/)"
echo "Log in as lena (project lead), maria or alex (domain experts); password: fineline-demo"
echo
$BIN/python manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}"
