"""Requests the views could not read as sent: a NUL character PostgreSQL could not store, a chunked body the WSGI
layer would hand over as empty. Each is settled here, before any view runs, with a clear 4xx."""

import tempfile

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse

MESSAGE = "The request contains a NUL character (\\u0000), which cannot be stored."


class RejectNulCharacters:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            nul = self._has_nul(request)
        except RequestDataTooBig:
            message = (
                f"The body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes, the limit of a form or JSON body"
                " (imports take files up to the upload limit)."
            )
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message, "code": "body_too_large"}, status=413)
            return HttpResponse(message, status=413)
        if nul:
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


LENGTH_REQUIRED = (
    "This server cannot read a chunked body (Transfer-Encoding: chunked): send the body with a Content-Length"
    " (e.g. curl --data-binary @file instead of @-), or go through the deployment's nginx, which accepts both."
)
CHUNK_BYTES = 1 << 16


class ReadChunkedBodies:
    """A body sent with `Transfer-Encoding: chunked` (curl --data-binary @-, streaming clients) has no Content-Length,
    and Django reads a request without one as empty: an import of it read 0 lines, a PATCH changed nothing.

    Behind nginx every body arrives with its length (it buffers them). A client that reaches the WSGI server itself:
    - where the server de-chunks the body (gunicorn; it says so with `wsgi.input_terminated`), the body is read to its
      end into a temporary file (in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, on disk past it), at most
      FINELINE_IMPORT_MAX_BODY_BYTES (nginx's client_max_body_size; 413 past it), and the request goes on with its
      Content-Length like any other: the import's streaming reader, the multipart parser, DRF and Django's
      DATA_UPLOAD_MAX_MEMORY_SIZE check see it as they would behind nginx;
    - where it does not (runserver's wsgiref hands over the raw chunk framing), 411 Length Required.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        if meta.get("CONTENT_LENGTH") or "chunked" not in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            return self.get_response(request)
        if not meta.get("wsgi.input_terminated"):
            return _refusal(request, 411, LENGTH_REQUIRED, "length_required")
        limit = settings.FINELINE_IMPORT_MAX_BODY_BYTES
        with tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE) as body:
            size = 0
            while chunk := meta["wsgi.input"].read(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    message = f"The request body is over the limit of {limit} bytes."
                    return _refusal(request, 413, message, "body_too_large")
                body.write(chunk)
            body.seek(0)
            meta["CONTENT_LENGTH"] = str(size)
            # What WSGIRequest builds from a Content-Length (its `_stream`); nothing has read from it yet.
            request._stream = LimitedStream(body, size)
            return self.get_response(request)


def _refusal(request, status: int, message: str, code: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "code": code}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
