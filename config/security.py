"""The client's address as the login lockout counts it: REMOTE_ADDR, or, behind FINELINE_PROXY_COUNT trusted reverse
proxies, the address the outermost of them saw (X-Forwarded-For entries left of it are the client's to forge)."""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render


def client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.FINELINE_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        return remote
    return forwarded[-proxies]


def lockout_response(request, original_response, credentials):
    """A locked-out login: the page for browsers, JSON for the API (429 either way)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = (
        f"Too many failed logins for this account or from this address: locked for {minutes} minutes after the "
        "last failure."
    )
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=429)
    else:
        context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
        response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response
