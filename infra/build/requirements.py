"""Export each function's requirements.txt from uv.lock: only the packages its code can import.

The imports are found statically from the function's app.py through every `idsentry` module
it reaches, including imports inside functions, because a lazy import still has to be
deployed. Versions and the dependency closure come from uv.lock, evaluated for the Lambda
runtime (Linux, arm64, CPython 3.12).
"""

from __future__ import annotations

import argparse
import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = ROOT / "layers" / "idsentry" / "python"
FUNCTIONS = ROOT / "functions"
LOCK = ROOT / "uv.lock"
# The environment markers of the Lambda runtime the functions deploy to.
LAMBDA_ENVIRONMENT = {
    "implementation_name": "cpython",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.12.0",
    "python_version": "3.12",
    "sys_platform": "linux",
    "os_name": "posix",
    "extra": "",
}
# Standard-library modules that need a distribution on Lambda: zoneinfo reads the IANA
# database from tzdata when the runtime image has no /usr/share/zoneinfo.
DATA_DISTRIBUTIONS = {"zoneinfo": "tzdata"}
HEADER = "# Exported from uv.lock by `make requirements`; do not edit.\n"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module_file(module: str) -> Path | None:
    base = PACKAGE_ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_modules(app: Path) -> set[str]:
    """Return the top-level third-party modules reachable from a function's app.py."""
    seen: set[Path] = set()
    pending = [app]
    found: set[str] = set()
    stdlib = set(sys.stdlib_module_names)

    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "idsentry":
                parts = name.split(".")
                # Every package on the way is imported too (its __init__.py runs).
                for depth in range(1, len(parts) + 1):
                    module_file = _module_file(".".join(parts[:depth]))
                    if module_file is not None:
                        pending.append(module_file)
            elif top in DATA_DISTRIBUTIONS:
                found.add(top)
            elif top not in stdlib and top != "__future__":
                found.add(top)
    return found


def _locked_packages() -> dict[str, dict[str, object]]:
    lock = tomllib.loads(LOCK.read_text(encoding="utf-8"))
    return {canonicalize_name(package["name"]): package for package in lock["package"]}


def closure(distributions: set[str], locked: dict[str, dict[str, object]]) -> dict[str, str]:
    """Return name → version of the distributions and everything they need on Lambda."""
    result: dict[str, str] = {}
    pending = [canonicalize_name(name) for name in distributions]
    while pending:
        name = pending.pop()
        if name in result:
            continue
        package = locked.get(name)
        if package is None:
            raise SystemExit(f"{name} is imported but not in uv.lock; add it to pyproject.toml")
        result[name] = str(package["version"])
        for dependency in package.get("dependencies", []):  # type: ignore[attr-defined]
            marker = dependency.get("marker")
            if marker and not Marker(marker).evaluate(LAMBDA_ENVIRONMENT):
                continue
            pending.append(canonicalize_name(dependency["name"]))
    return result


def render(app: Path, locked: dict[str, dict[str, object]]) -> str:
    """Return the requirements.txt text of one function."""
    module_to_distributions = packages_distributions()
    distributions: set[str] = set()
    for module in sorted(third_party_modules(app)):
        if module in DATA_DISTRIBUTIONS:
            distributions.add(DATA_DISTRIBUTIONS[module])
            continue
        owners = module_to_distributions.get(module)
        if not owners:
            raise SystemExit(f"{app}: no installed distribution provides {module!r}")
        distributions.update(owners)
    pins = closure(distributions, locked)
    lines = [f"{name}=={version}" for name, version in sorted(pins.items())]
    return HEADER + "\n".join(lines) + "\n"


def main() -> int:
    """Write (or with --check, compare) every function's requirements.txt."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    args = parser.parse_args()

    locked = _locked_packages()
    stale = []
    for app in sorted(FUNCTIONS.glob("*/app.py")):
        target = app.parent / "requirements.txt"
        text = render(app, locked)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(target.relative_to(ROOT)))
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        print("stale requirement files (run `make requirements`): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
