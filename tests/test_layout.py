"""The runtime packages never import the tooling, and the runtime wheel does not carry it."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ("prognos", "ingest", "detection", "orders", "scheduling", "webhooks", "service_api", "schemas")
TOOLING = ("ops", "simulator", "benchmarks", "tests")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_runtime_never_imports_tooling():
    offenders = []
    for pkg in RUNTIME:
        for path in sorted((ROOT / pkg).rglob("*.py")) if (ROOT / pkg).is_dir() else ():
            bad = _imports(path) & set(TOOLING)
            # the CLI names tooling modules only as strings to dispatch to, and migrate's broker
            # reload is guarded; a real import statement of tooling anywhere else is a leak
            if bad and path != ROOT / "prognos" / "cli.py":
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(bad)}")
    assert offenders == []


def test_wheel_carries_runtime_only():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = conf["tool"]["setuptools"]["packages"]["find"]["include"]
    tops = {name.rstrip("*") for name in include}
    assert tops.isdisjoint(TOOLING)
    assert {"prognos", "ingest", "detection", "service_api", "schemas"} <= tops
