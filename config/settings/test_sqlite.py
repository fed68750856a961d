"""The service and API suites on the embedded default's database: SQLite in a file, as `make run` uses it.

`make test` runs the suite a second time under these settings, all but the slow, browser and PostgreSQL-only tests
(`-m "not slow and not browser and not postgresql"`), so a bug that only SQLite has turns CI red; tests/embedded/
covers the rest of the default path (the filesystem broker, a real worker, the pages) by starting `make run` itself."""

import os
import tempfile

os.environ["DATABASE_URL"] = "sqlite:///" + os.path.join(tempfile.gettempdir(), "fineline-sqlite.sqlite3")

from .test import *  # noqa: E402,F403
from .test import DATABASES  # noqa: E402

# A file, not memory: threads in the concurrency tests then get connections of their own, as web requests do.
DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"fineline-test-{os.getpid()}.sqlite3")}
