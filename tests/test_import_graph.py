"""The package's import graph follows the layering of the design: contracts at the bottom, image
operations and the model above them, producers (synth, train, eval) and faces on top.

Every module under ``src/seagull`` is parsed with :mod:`ast`; every import of a ``seagull`` module
(top level or inside a function, absolute or relative) is checked against the rules below.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# The rank of each unit (a top-level module or subpackage of seagull): a unit imports from its own
# unit, from lower ranks and from other units of its own rank, except that producers never import one
# another (shared pieces such as correlations belong in a lower layer).
CONTRACTS, IMAGE_OPS, MODEL, PRODUCERS, FACES = range(5)
RANKS = {
    **dict.fromkeys(
        (
            "errors",
            "roi",
            "imageio",
            "schema",
            "templates",
            "registry",
            "version",
            "cluster",
            "workers",
            "options",
            "paths",
            "display",
        ),
        CONTRACTS,
    ),
    **dict.fromkeys(("distortions", "camera", "metrics", "proposals", "references", "authentic"), IMAGE_OPS),
    "model": MODEL,
    **dict.fromkeys(("synth", "train", "eval"), PRODUCERS),
    **dict.fromkeys(("__init__", "__main__", "assess", "serve", "cli"), FACES),
}
SIDEWAYS_FORBIDDEN = {PRODUCERS}
# Pairs (importer, imported) name parts of the package: a unit, or a module and what is inside it.
# Imports the ranks alone would allow but the design forbids: synthesis never uses the model (it must
# run without torch weights), the server does not use CLI modules.
FORBIDDEN = {("synth", "model"), ("serve", "assess.commands"), ("serve", "cli")}
# Upward imports the design allows. Evaluation must measure exactly what users get, so it runs the
# Assessor itself (not a copy of its scoring, not its commands, batches or pictures).
PERMITTED = {("eval", "assess.assessor")}

# Violations in the code today, each to be removed by moving the shared piece into a lower layer.
# This list must shrink, never grow: a new entry needs a design decision, not a quick fix.
ALLOWED: set[tuple[str, str]] = set()


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, src: Path) -> set[str]:
    """Absolute names of the ``seagull`` modules one file imports (``from x import y``: ``x.y`` when
    ``y`` is a submodule, else ``x``)."""
    name = module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "seagull")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "seagull":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                is_module = any((src / Path(*sub.split("."))).with_suffix(s).exists() for s in (".py", ""))
                found.add(sub if is_module else target)
    return found


def unit_of(module: str) -> str:
    """``seagull.model.mfe`` -> ``model``; ``seagull`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def within(module: str, part: str) -> bool:
    """Whether ``module`` (``seagull.a.b``) is the package part ``part`` (``a`` or ``a.b``) or inside it."""
    return module == f"seagull.{part}" or module.startswith(f"seagull.{part}.")


def rule_broken(importer: str, imported: str) -> str | None:
    """Why importing ``imported`` from ``importer`` breaks the layering, or None when it does not."""
    src, dst = unit_of(importer), unit_of(imported)
    if src == dst:
        return None
    if src not in RANKS or dst not in RANKS:
        return f"unit {src if src not in RANKS else dst!r} has no layer: add it to RANKS"
    for a, b in FORBIDDEN:
        if within(importer, a) and within(imported, b):
            return f"{a} must not import {b}"
    if any(within(importer, a) and within(imported, b) for a, b in PERMITTED):
        return None
    if RANKS[dst] > RANKS[src]:
        return f"upward: {src} (layer {RANKS[src]}) imports {dst} (layer {RANKS[dst]})"
    if RANKS[dst] == RANKS[src] and RANKS[src] in SIDEWAYS_FORBIDDEN:
        return f"sideways: {src} imports {dst} (both layer {RANKS[src]})"
    return None


def violations(src: Path) -> dict[tuple[str, str], str]:
    found = {}
    for path in sorted((src / "seagull").rglob("*.py")):
        importer = module_name(path, src)
        for imported in sorted(imported_modules(path, src)):
            why = rule_broken(importer, imported)
            if why:
                found[(importer, imported)] = why
    return found


def test_no_import_breaks_the_layering() -> None:
    new = {k: v for k, v in violations(SRC).items() if k not in ALLOWED}
    assert not new, "imports against the layering:\n" + "\n".join(
        f"  {a} -> {b}: {why}" for (a, b), why in sorted(new.items())
    )


def test_allow_list_holds_only_live_violations() -> None:
    """An entry whose import is gone must leave the list, so that the list only shrinks."""
    stale = ALLOWED - set(violations(SRC))
    assert not stale, f"remove these fixed entries from ALLOWED: {sorted(stale)}"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / "seagull" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_checker_catches_bad_imports(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": "",
            "roi.py": "from .errors import RoiError\n",  # down: fine
            "schema.py": "from .model import seagull\n",  # upward
            "model/__init__.py": "",
            "model/seagull.py": "def f():\n    from ..train import step\n",  # upward, in a function
            "train/__init__.py": "",
            "train/step.py": "import seagull.eval.metrics\n",  # sideways between producers
            "eval/__init__.py": "",
            "eval/metrics.py": "from .. import roi\n",
            # the Assessor is permitted to eval, the rest of the assess face is not
            "eval/predictors.py": "from ..assess.assessor import Assessor\nfrom ..assess.batch import assess_one\n",
            "synth/__init__.py": "",
            "synth/runner.py": "from ..model.seagull import load\n",  # synth never uses the model
            "serve/__init__.py": "",
            "serve/app.py": "from seagull.assess.commands import cmd_map\nfrom seagull import assess\n",
            "assess/__init__.py": "",
            "assess/assessor.py": "",
            "assess/batch.py": "",
            "assess/commands.py": "",
            "cluster.py": "from .errors import ConfigError\n",
            "synth/ray_backend.py": "from ..cluster import ray_session\n",  # cluster is a contract: fine
        },
    )
    assert set(violations(src)) == {
        ("seagull.schema", "seagull.model.seagull"),
        ("seagull.model.seagull", "seagull.train.step"),
        ("seagull.train.step", "seagull.eval.metrics"),
        ("seagull.synth.runner", "seagull.model.seagull"),
        ("seagull.eval.predictors", "seagull.assess.batch"),
        ("seagull.serve.app", "seagull.assess.commands"),
    }


def test_relative_imports_resolve_to_absolute_modules(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "from .model import build\n",
            "model/__init__.py": "from . import mfe\nfrom .mfe import X\n",
            "model/mfe.py": "from ..errors import E\n",
            "errors.py": "",
        },
    )
    assert imported_modules(src / "seagull" / "model" / "__init__.py", src) == {"seagull.model.mfe"}
    assert imported_modules(src / "seagull" / "model" / "mfe.py", src) == {"seagull.errors"}
    assert imported_modules(src / "seagull" / "__init__.py", src) == {"seagull.model"}
