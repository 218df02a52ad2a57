"""What a deployment package loads, found by loading it (issue 16): the handler module is imported,
then every import that the project's own modules make inside functions (the GitHub client,
PyJWT: loaded when first needed), until no new module of the project appears.

The build (functions/Makefile) compiles exactly those modules: Lambda's code directory is
read-only, so a module shipped without byte code is compiled on every cold start, and compiling
everything would make the packages a third larger for modules no path loads. The package check
(tests/packages/test_packages.py) runs it in the package's own interpreter (``python -S``, nothing on
sys.path but the package, its layers and the runtime's boto3) to find what a package lacks.

Standard library only. Prints JSON: the files under ROOT it loaded, those without byte code,
and the imports that failed.

    python package_probe.py ROOT MODULE... [--not-needed NAME,...] [--compile PREFIX]
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import os
import py_compile
import sys
from pathlib import Path

FIRST_PARTY = ("modelrun", "submit", "track", "report")


def deferred_imports(path: Path, package: str) -> set[str]:
    """The modules a file imports inside its functions (module-level ones run on import)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import):
                found.update(alias.name for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom):
                base = importlib.util.resolve_name("." * inner.level + (inner.module or ""), package)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in inner.names)  # submodules, if any
    return found


def placeholders() -> dict[str, str]:
    """A value of its type for every variable a settings model (modelrun.config) reads: the
    handlers validate their settings when imported, and an import check or an import timing is
    no function's environment. None for a package without modelrun (the JWT layer)."""
    try:
        config = importlib.import_module("modelrun.config")
    except ModuleNotFoundError:
        return {}
    values: dict[str, str] = {}
    for model in vars(config).values():
        if isinstance(model, type) and hasattr(model, "from_environ") and hasattr(model, "model_fields"):
            for info in model.model_fields.values():
                values[str(info.alias)] = {int: "1", float: "1", bool: "false"}.get(info.annotation, "probe")
    return values


def placeholder_settings() -> None:
    """Fill in what the probe's environment lacks (see placeholders)."""
    for name, value in placeholders().items():
        os.environ.setdefault(name, value)


def load(modules: list[str], not_needed: set[str]) -> list[str]:
    """Import ``modules``, then the deferred imports of every project module loaded, to a fixed
    point; returns the imports that failed."""
    missing: list[str] = []
    for module in modules:
        importlib.import_module(module)  # a failure here is the package's first problem: raise it
    scanned: set[str] = set()
    while True:
        ours = [
            (name, mod, str(mod.__file__))
            for name, mod in list(sys.modules.items())
            if name.split(".")[0] in FIRST_PARTY and name not in scanned and getattr(mod, "__file__", None)
        ]
        if not ours:
            return missing
        for name, mod, file in ours:
            scanned.add(name)
            package = name if hasattr(mod, "__path__") else name.rpartition(".")[0]
            for target in sorted(deferred_imports(Path(file), package)):
                if target in sys.modules or any(target == n or target.startswith(n + ".") for n in not_needed):
                    continue
                parent, _, attribute = target.rpartition(".")
                if parent in sys.modules and hasattr(sys.modules[parent], attribute):
                    continue  # `from x import name`: a name, not a module
                try:
                    importlib.import_module(target)
                except ModuleNotFoundError as error:
                    if error.name == target and parent and parent in sys.modules:
                        continue  # a name the module does not have as a submodule
                    missing.append(f"{name}: {target} ({error})")
                except ImportError as error:
                    missing.append(f"{name}: {target} ({error})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("modules", nargs="+")
    parser.add_argument("--not-needed", default="", help="modules (and their submodules) no path here loads")
    parser.add_argument("--compile", metavar="PREFIX", help="compile the loaded files, as found under PREFIX")
    args = parser.parse_args()
    root = args.root.resolve()
    sys.path.insert(0, str(root))
    placeholder_settings()
    missing = load(args.modules, {n for n in args.not_needed.split(",") if n})
    files = sorted(
        {
            Path(str(m.__file__)).resolve()
            for m in list(sys.modules.values())
            if getattr(m, "__file__", None) and str(m.__file__).endswith(".py")
        }
    )
    ours = [f for f in files if f.is_relative_to(root)]
    if args.compile:
        for f in ours:
            py_compile.compile(
                str(f),
                dfile=f"{args.compile}/{f.relative_to(root)}",  # where the file lies on Lambda
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
    uncompiled = [str(f.relative_to(root)) for f in ours if not Path(importlib.util.cache_from_source(str(f))).exists()]
    print(json.dumps({"files": [str(f.relative_to(root)) for f in ours], "uncompiled": uncompiled, "missing": missing}))


if __name__ == "__main__":
    main()
