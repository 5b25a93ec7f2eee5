"""The package's import graph follows the layering of the design: contracts at the bottom, image
operations and the model above them, producers (synth, train, eval) and faces on top.

Every module under ``src/seagull`` is parsed with :mod:`ast`; every import of a ``seagull`` module
(top level or inside a function, absolute or relative) is checked against the rules below, and no two
modules may reach each other through imports (a cycle), however deep inside a function one of them hides.
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
            "labels",
            "records",
            "region_prediction",
            "splits",
            "fileio",
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


def imported_modules(path: Path, src: Path, runtime_only: bool = False) -> set[str]:
    """Absolute names of the ``seagull`` modules one file imports (``from x import y``: ``x.y`` when
    ``y`` is a submodule, else ``x``). ``runtime_only`` leaves out imports under ``if TYPE_CHECKING:``."""
    name = module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in _runtime_nodes(tree) if runtime_only else ast.walk(tree):
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


def _runtime_nodes(tree: ast.AST):
    """``ast.walk`` without the bodies of ``if TYPE_CHECKING:`` blocks (imports that never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if test is not None and ast.unparse(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                todo.extend(child.orelse)
                continue
            todo.append(child)


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
            "labels.py": "from .model import seagull\n",  # upward
            "model/__init__.py": "",
            "model/seagull.py": "def f():\n    from ..train import step\n",  # upward, in a function
            "train/__init__.py": "",
            "train/step.py": "import seagull.eval.agreement\n",  # sideways between producers
            "eval/__init__.py": "",
            "eval/agreement.py": "from .. import roi\n",
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
        ("seagull.labels", "seagull.model.seagull"),
        ("seagull.model.seagull", "seagull.train.step"),
        ("seagull.train.step", "seagull.eval.agreement"),
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


# --------------------------------------------------------------------------- import cycles
# Two modules that import each other, at module level or inside a function (the usual way to hide a
# circle), depend on each other's import order and cannot be understood or tested apart: the shared piece
# belongs in a module of its own. (A package's ``__init__`` running before its submodules is not a cycle.)
# Cycles in the code today, each a set of modules; this list must shrink, never grow.
CYCLES_ALLOWED: list[set[str]] = []


def import_graph(src: Path) -> dict[str, set[str]]:
    """Each module of the package -> the package modules it imports when it runs (any function included)."""
    graph = {}
    for path in sorted((src / "seagull").rglob("*.py")):
        name = module_name(path, src)
        graph[name] = {m for m in imported_modules(path, src, runtime_only=True) if m != name}
    return graph


def import_cycles(src: Path) -> list[set[str]]:
    """The groups of modules that reach each other through imports (strongly connected, 2 or more)."""
    graph = import_graph(src)
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []
    for root in sorted(graph):
        if root in order:
            continue
        work = [(root, iter(sorted(graph[root])))]  # iterative Tarjan: no recursion limit to meet
        order[root] = low[root] = len(order)
        stack.append(root)
        while work:
            node, edges = work[-1]
            nxt = next((m for m in edges if m in graph), None)
            if nxt is not None:
                if nxt not in order:
                    order[nxt] = low[nxt] = len(order)
                    stack.append(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in stack:
                    low[node] = min(low[node], order[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == order[node]:
                group = set()
                while True:
                    m = stack.pop()
                    group.add(m)
                    if m == node:
                        break
                if len(group) > 1:
                    found.append(group)
    return found


def test_no_module_imports_itself_in_a_circle() -> None:
    new = [c for c in import_cycles(SRC) if c not in CYCLES_ALLOWED]
    assert not new, "modules that import each other (at module level or inside functions):\n" + "\n".join(
        "  " + " <-> ".join(sorted(c)) for c in new
    )


def test_cycle_allow_list_holds_only_live_cycles() -> None:
    stale = [c for c in CYCLES_ALLOWED if c not in import_cycles(SRC)]
    assert not stale, f"remove these fixed cycles from CYCLES_ALLOWED: {stale}"


def test_cycle_checker_finds_circles_hidden_in_functions(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "from .model import seagull\n",  # a package runs its __init__ first: no cycle
            "model/__init__.py": "from .seagull import Model\nfrom .checkpoints import load\n",
            "model/checkpoints.py": "from .seagull import Model\n",
            "model/seagull.py": "def use_file():\n    from .checkpoints import load\n",  # hidden circle
            "model/vision.py": "from . import mfe\n",
            "model/mfe.py": "from .vision import Tower\n",  # a plain circle of two
            "model/weights.py": "from ..errors import ModelError\n",
            "model/a.py": "from .b import x\n",
            "model/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n",  # never runs
            "errors.py": "",
        },
    )
    assert sorted(map(sorted, import_cycles(src))) == [
        ["seagull.model.checkpoints", "seagull.model.seagull"],
        ["seagull.model.mfe", "seagull.model.vision"],
    ]
