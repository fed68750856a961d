"""The signed-in user of a browser session, from the cache when it can be: every page of the review asks for it, and
the database's answer (a query and a model built) is most of a trivial request's cost.

A cached user is used only when the session's auth hash still verifies against it and it is active, so a password
change or a deactivation ends the session as Django's own check would. Saving or deleting a user drops its entry (a
signal), in this process's cache and, with Redis, in every web process's; a change made another way (an UPDATE that
sends no signal, or `manage.py changepassword` beside `make run`'s in-memory cache), or a request that read the user
just before a change and cached it just after, shows within USER_CACHE_SECONDS.
"""

from functools import partial

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware, auser
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject

USER_CACHE_SECONDS = 60


def _key(user_id) -> str:
    return f"core:user:{user_id}"


def session_user(request):
    """The session's user as `django.contrib.auth.get_user` gives it, read from the cache when the entry still
    verifies; otherwise Django's own lookup (which also flushes a session that no longer verifies)."""
    session = request.session
    user_id, backend = session.get(auth.SESSION_KEY), session.get(auth.BACKEND_SESSION_KEY)
    if user_id is not None and backend in settings.AUTHENTICATION_BACKENDS:
        cached = cache.get(_key(user_id))
        if (
            cached is not None
            and cached.is_active
            and constant_time_compare(session.get(auth.HASH_SESSION_KEY, ""), cached.get_session_auth_hash())
        ):
            cached.backend = backend
            return cached
    user = auth.get_user(request)
    if user.is_authenticated:
        cache.set(_key(user.pk), user, USER_CACHE_SECONDS)
    return user


def _cached_user(request):
    if not hasattr(request, "_cached_user"):
        request._cached_user = session_user(request)
    return request._cached_user


class CachedAuthenticationMiddleware(AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, with the session's user read through session_user."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _cached_user(request))
        request.auser = partial(auser, request)


def user_cache_drop(sender, instance, **kwargs) -> None:
    cache.delete(_key(instance.pk))


def connect_signals() -> None:
    user_model = auth.get_user_model()
    post_save.connect(user_cache_drop, sender=user_model, dispatch_uid="core.auth.user_saved")
    post_delete.connect(user_cache_drop, sender=user_model, dispatch_uid="core.auth.user_deleted")
