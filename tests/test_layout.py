"""The layout docs/design.md promises: no two modules import each other, imports at module top (but the
heavy optional ones), one command module per subcommand, evaluation outside the simulator package."""

import ast
import itertools
from pathlib import Path

from vla_jax import cli

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "vla_jax": REPO / "vla_jax",
    "data_pipelines": REPO / "data_pipelines",
    "vla_runtime": REPO / "runtime" / "vla_runtime",
}
# Imported inside functions on purpose: heavy or optional (a robot has no TensorFlow, a trainer may lack wandb),
# or torch-only parts of the runtime that importing vla_runtime.policy_io must not pull in.
LAZY_OK = {
    "tensorflow",
    "tensorflow_datasets",
    "torch",
    "transformers",
    "mujoco",
    "metaworld",  # imports mujoco and its GL libraries at import: never in a TensorFlow process
    "wandb",
    "websockets",
    "vla_runtime.Policy",
    "vla_runtime.policy",
    "vla_runtime.server",
}


def _modules() -> dict[str, tuple[ast.Module, bool]]:
    """module name -> (syntax tree, is a package's __init__)."""
    out = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            out[name] = (ast.parse(path.read_text()), path.name == "__init__.py")
    return out


def _imported(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> list[str]:
    """Dotted names an import statement refers to (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [f"{base}.{a.name}" for a in node.names] + [base]


def _edges(module: str, node: ast.Import | ast.ImportFrom, is_package: bool, modules) -> set[str]:
    """The modules of ours an import loads: `from pkg import sub` -> pkg.sub, `from mod import name` -> mod."""
    names = _imported(module, node, is_package)
    if isinstance(node, ast.Import):
        return set(names) & set(modules)
    *members, base = names
    return (set(members) & set(modules)) or ({base} & set(modules))


def test_no_two_modules_import_each_other():
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, (tree, is_package) in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name] |= _edges(name, node, is_package, modules) - {name}
    cycles = [(a, b) for a, b in itertools.combinations(sorted(graph), 2) if b in graph[a] and a in graph[b]]
    assert not cycles, cycles
    # and no longer loops either: a topological order exists (Kahn)
    indegree = {m: 0 for m in graph}
    for deps in graph.values():
        for d in deps:
            indegree[d] += 1
    ready, seen = [m for m, n in indegree.items() if n == 0], 0
    while ready:
        m = ready.pop()
        seen += 1
        for d in graph[m]:
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    assert seen == len(graph), sorted(m for m, n in indegree.items() if n > 0)


def test_imports_sit_at_module_top_except_heavy_optional_ones():
    lazy = []
    for name, (tree, is_package) in _modules().items():
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    targets = _imported(name, node, is_package)
                    if not any(t == ok or t.startswith(ok + ".") for t in targets for ok in LAZY_OK):
                        lazy.append(f"{name}: {ast.unparse(node)}")
    assert not lazy, lazy


def test_one_command_module_per_subcommand_and_evaluation_outside_sim():
    commands = {p.stem for p in (REPO / "vla_jax" / "commands").glob("*.py")} - {"__init__"}
    assert commands == {name.replace("-", "_") for name in cli.SUBCOMMANDS}
    assert (
        not list((REPO / "vla_jax").rglob("commands_*.py"))
        and not (REPO / "data_pipelines" / "commands_stats.py").exists()
    )
    sim = {p.stem for p in (REPO / "vla_jax" / "sim").glob("*.py")}
    assert not sim & {"evaluate", "jax_policy", "offline_metrics", "policies", "plots"}
    assert not (REPO / "vla_jax" / "models" / "tiny_hf.py").exists()  # test fixtures live in tests/
