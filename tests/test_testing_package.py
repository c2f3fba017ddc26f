"""kgfactory.testing is importable by adapters' tests, and only it needs pytest: `import kgfactory` (and the
modules a server imports) never pulls pytest in, and without pytest kgfactory.testing says what to install."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_importing_kgfactory_does_not_import_pytest():
    r = _run("import sys, kgfactory, kgfactory.bootstrap, kgfactory.derived_view, kgfactory.retrieval.retriever\n"
             "assert 'pytest' not in sys.modules, 'pytest imported'\n"
             "import kgfactory.testing.graph_store, kgfactory.testing.vector_store\n"
             "assert 'pytest' in sys.modules\n")
    assert r.returncode == 0, r.stderr


def test_without_pytest_the_error_says_what_to_install():
    r = _run("import sys\nsys.modules['pytest'] = None  # as if not installed\nimport kgfactory.testing\n")
    assert r.returncode != 0 and "needs pytest" in r.stderr and "kgfactory[test]" in r.stderr, r.stderr
