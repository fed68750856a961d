"""Requests PostgreSQL could not store: a NUL character in the query string, a form or a JSON body is a clear 400
before any view runs (the import endpoint reports NULs line by line itself)."""

from django.http import HttpResponseBadRequest, JsonResponse

MESSAGE = "The request contains a NUL character (\\u0000), which cannot be stored."


class RejectNulCharacters:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._has_nul(request):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": MESSAGE}, status=400)
            return HttpResponseBadRequest(MESSAGE)
        return self.get_response(request)

    @staticmethod
    def _has_nul(request) -> bool:
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()
        ):
            return True
        if request.path.endswith(("/imports/", "/imports/preview/")):
            return False  # import bodies are parsed line by line: a NUL is a line-numbered error there
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return any("\x00" in key or any("\x00" in v for v in values) for key, values in request.POST.lists())
        return request.content_type == "application/json" and (b"\\u0000" in request.body or b"\x00" in request.body)
