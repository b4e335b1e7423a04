"""The house rules that an import can break: the import contract (``[tool.importlinter]`` in
pyproject.toml, checked by ``lint-imports``; ``make test`` runs it too) and each package's
``__all__``, the list of what it offers."""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest

import photos
import summit

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
SRC = Path(summit.__file__).resolve().parents[1]  # the tree these tests import
# the public faces: each must declare __all__ (every other package that declares one keeps it too)
MUST_DECLARE = ["summit.blueprint", "summit.ports", "summit.security", "summit.web"]
# one import that breaks each contract, as (file under src/, line to add, id of the contract it breaks)
VIOLATIONS = [
    ("photos/services/common.py", "import summit.adapters.memory.cache", "app-no-adapters"),
    ("photos/auth.py", "from summit.security.identity.pool import UserPool as _Pool", "app-public-faces"),
    ("photos/media.py", "from summit.blueprint.model import Auth as _Auth", "app-public-faces"),
    ("summit/wiring.py", "import photos.policies", "platform-no-app"),
    ("summit/ports/cache.py", "import summit.platform", "platform-layers"),
    ("summit/security/services.py", "import summit.adapters.memory.cache", "adapters-through-wiring"),
]


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with this project's contracts, on the packages found in ``src``."""
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache", "--no-logo", str(PYPROJECT)],
        cwd=src, env={**os.environ, "PYTHONPATH": str(src), "COLUMNS": "300"}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def contracts() -> dict[str, str]:
    """Contract id -> name, as pyproject.toml declares them."""
    return {c["id"]: c["name"] for c in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]}


def test_the_import_contract_holds() -> None:
    result = lint_imports(SRC)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in contracts().values():
        assert f"{name} KEPT" in result.stdout


def test_each_contract_catches_the_import_it_forbids(tmp_path: Path) -> None:
    """On a copy of the source with one forbidden import per contract, every contract breaks and
    names the import: the contract is not vacuous (a misspelt module, a wildcard that matches
    nothing, a layer the graph never crosses)."""
    src = tmp_path / "src"
    for package in ("summit", "photos"):
        shutil.copytree(SRC / package, src / package, ignore=_not_python)
    for file, line, _ in VIOLATIONS:
        with (src / file).open("a") as out:
            out.write(f"\n{line}  # noqa\n")
    result = lint_imports(src)
    assert result.returncode == 1, result.stdout + result.stderr
    names = contracts()
    assert {contract for _, _, contract in VIOLATIONS} == set(names)  # one violation for every contract
    for contract, name in names.items():
        assert f"{name} BROKEN" in result.stdout, result.stdout
    for file, line, _ in VIOLATIONS:
        importer = file.removesuffix(".py").replace("/", ".")
        assert f"{importer} -> " in result.stdout, f"{line!r} in {file} was not reported:\n{result.stdout}"


def _not_python(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or (not n.endswith(".py") and not (Path(directory) / n).is_dir())]


def _packages() -> list[str]:
    found = ["summit", "photos"]
    for root in (summit, photos):
        found += [info.name for info in pkgutil.walk_packages(root.__path__, root.__name__ + ".") if info.ispkg]
    return sorted(found)


def _offered(module: types.ModuleType) -> set[str]:
    """Public names bound in the package, less its own submodules (the import system binds those)."""
    return {
        name for name, value in vars(module).items()
        if not name.startswith("_") and name != "annotations"
        and not (isinstance(value, types.ModuleType) and value.__name__ == f"{module.__name__}.{name}")
    }  # fmt: skip


@pytest.mark.parametrize("name", [n for n in _packages() if n in MUST_DECLARE or hasattr(importlib.import_module(n), "__all__")])
def test_a_package_offers_exactly_its_sorted_all(name: str) -> None:
    package = importlib.import_module(name)
    listed = getattr(package, "__all__", None)
    assert isinstance(listed, list), f"{name} must declare __all__, the list of what it offers"
    assert listed == sorted(listed), f"{name}.__all__ is not sorted: {sorted(listed)}"
    assert len(set(listed)) == len(listed), f"{name}.__all__ lists a name twice"
    missing = [n for n in listed if not hasattr(package, n)]  # also loads what a package loads on first use
    assert not missing, f"{name}.__all__ lists names it does not have: {missing}"
    unlisted = _offered(package) - set(listed)
    assert not unlisted, f"{name} offers names its __all__ does not list (make them private, or list them): {sorted(unlisted)}"


def test_the_security_facade_is_what_the_app_uses() -> None:
    """Every name the app takes from summit.security is offered there, and what is offered there
    is the object its module defines (the facade re-exports, it does not copy)."""
    import summit.security as security
    from summit.security.identity import totp
    from summit.security.identity.api import router
    from summit.security.policies.access import Access
    from summit.security.services import Security

    assert (security.Security, security.Access, security.identity_router, security.totp) == (Security, Access, router, totp)
    used = {
        alias.name for path in (SRC / "photos").rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "summit.security" for alias in node.names
    }  # fmt: skip
    assert {"Security", "Principal", "identity_router"} <= used <= set(security.__all__), sorted(used - set(security.__all__))
    with pytest.raises(AttributeError, match="it offers: ACCESS_COOKIE"):
        security.PasswordHasher  # noqa: B018  (an inside of the package, not a part of its face)
