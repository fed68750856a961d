"""Laptop defaults for `make run`: debug on, SQLite and the filesystem broker unless URLs are set."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
