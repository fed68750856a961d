#!/usr/bin/env bash
# What the suite runs besides Python, from Debian's packages, installed when missing: Chromium for the browser tests
# (never a browser downloaded by Playwright) and nginx for the proxy tests (tests/security/test_slow_clients.py runs
# the deployment's nginx template in front of gunicorn), and docker-compose, which validates docker-compose.yml
# (`docker-compose config`, no Docker engine needed) for tests/security/test_deployment.py.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
chromium --version
"$(command -v nginx || echo /usr/sbin/nginx)" -v
docker-compose version --short
