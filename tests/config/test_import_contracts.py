"""The layering is checked, not just written: `lint-imports` (run by `make test` and `make lint`) keeps the contracts
of pyproject.toml, and breaks them when an import runs back up a layer or brings Django into the ML code."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "core", "curation", "training", "evaluation")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def tree(tmp_path):
    """A copy of the packages' Python files and of pyproject.toml, to add a bad import to."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_hold_today():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("curation/text.py", "from training import models", "Dependencies point one way"),
        ("core/params.py", "import curation.models", "Dependencies point one way"),
        ("training/services.py", "from evaluation.selectors import *", "Dependencies point one way"),
        ("evaluation/models.py", "import config.api", "Dependencies point one way"),
        ("training/recipes/estimate.py", "from django.conf import settings", "ML code and metrics import no Django"),
        ("evaluation/harness.py", "from curation import models", "ML code and metrics import no Django"),
        ("evaluation/metrics.py", "import django", "ML code and metrics import no Django"),
    ],
)
def test_a_violating_import_fails(tree, module, line, contract):
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # a violation\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    broken = [row for row in result.stdout.splitlines() if row.startswith(contract) and row.endswith("BROKEN")]
    assert broken, result.stdout
