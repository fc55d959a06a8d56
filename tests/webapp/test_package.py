"""The web app is its own installed package, mlstack_webapp, and carries no model code:
its image has neither the mlstack package nor scikit-learn."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.webapp.conftest import APP, WEBAPP

MODEL_CODE = ("mlstack", "sklearn", "scipy", "joblib")


def page_imports() -> list[str]:
    """The modules webapp/api.py imports at its top (the canvas component, imported
    where it is drawn, needs a running page)."""
    names = set()
    for node in ast.parse(APP.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return sorted(names - {"__future__"})


def test_the_page_and_its_package_import_no_model_code(tmp_path: Path) -> None:
    """In a fresh interpreter started outside the checkout: what the page imports is
    found as installed (nothing added to the import path) and pulls in none of the model's code."""
    modules = page_imports()
    assert "mlstack_webapp.client" in modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "import mlstack_webapp\n"
        "print(json.dumps({'file': mlstack_webapp.__file__, 'modules': sorted(sys.modules)}))\n"
    )
    out = subprocess.check_output([sys.executable, "-c", script], cwd=tmp_path, text=True)
    found = json.loads(out.splitlines()[-1])
    assert Path(found["file"]).parent == WEBAPP / "mlstack_webapp"
    loaded = sorted({m.split(".")[0] for m in found["modules"]} & set(MODEL_CODE))
    assert not loaded, f"the web app imports model code: {loaded}"
