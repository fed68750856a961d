"""Failed logins (django-axes) and the Content-Security-Policy (django-csp). HTTPS and cookies: production.py."""

import os
from datetime import timedelta

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
