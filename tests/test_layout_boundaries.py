"""The import boundaries of DESIGN.md: the server starts without the training stack, the
libraries never reach into the gateway, and only the entry point imports the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "paramstack"
BUILD_SIDE = ("data", "tokenizer", "train", "evaluate", "export", "vision.train_digits")


def imports_of(folder: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (PACKAGE / folder).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(PACKAGE))] = {n for n in names if n.startswith("paramstack")}
    return found


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = [f"paramstack.{name}" for name in forbidden]
    return sorted(
        f"{module} imports {name}"
        for module, names in imports_of(folder).items()
        for name in names
        if any(name == b or name.startswith(b + ".") for b in bad)
    )


def test_serving_side_never_imports_the_build_side() -> None:
    assert offenders("gateway", BUILD_SIDE) == []
    assert offenders("backends", BUILD_SIDE) == []


def test_libraries_never_import_the_gateway() -> None:
    for library in ("guard", "attest", "ecg", "registry", "store"):
        assert offenders(library, ("gateway", "cli")) == [], library


def test_store_knows_no_domain_and_registry_no_http() -> None:
    assert offenders("store", ("registry", "gateway", "guard", "ecg")) == []
    assert offenders("registry", ("gateway",)) == []


def test_gateway_imports_without_torch_or_training_libraries() -> None:
    code = (
        "import sys, paramstack.gateway.app, paramstack.gateway.tasks.image, "
        "paramstack.gateway.tasks.ecg, paramstack.ecg.strip;"
        "heavy = [m for m in ('torch', 'sklearn', 'mlflow', 'onnxscript') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
