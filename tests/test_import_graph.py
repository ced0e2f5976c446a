"""The project's modules import each other without cycles, counting lazy (function-level) imports too, and the
layers point one way: the bottom layer (hub, published, checkpoint, errors, config_utils) imports no model,
text, weights or agent code; models and text towers never import the weights stack or the assembly."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("zh_steve", "alignment", "eval")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):  # every import, lazy ones too
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:  # `from pkg import submodule` imports the submodule
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for t in targets:
                while t and t not in modules and "." in t:
                    t = t.rpartition(".")[0]
                # importing a.b.c runs the __init__ of a.b first: count sub-package inits (the top-level package
                # inits only re-export lazily, as `from zh_steve import ZhSteveAgent` needs)
                while t.count(".") >= 1:
                    if t in modules and t != name and not name.startswith(t + "."):
                        graph[name].add(t)
                    t = t.rpartition(".")[0]
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_no_import_cycles_including_lazy_imports():
    graph = _graph()
    assert len(graph) > 60 and "zh_steve.assembly" in graph["zh_steve.agent"]  # the parser sees the project
    assert "zh_steve.testing.tiny_text" in graph["zh_steve.assembly"]  # a function-level import is counted
    assert _cycles(graph) == []


def test_cycle_detector_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layers_point_one_way():
    graph = _graph()
    bottom = ("zh_steve.errors", "zh_steve.config_utils", "zh_steve.checkpoint", "zh_steve.hub", "zh_steve.published")
    for m in bottom:
        assert _reach(graph, m) <= set(bottom), (m, _reach(graph, m) - set(bottom))
    upper = {m for m in graph if m.startswith(("zh_steve.weights", "zh_steve.assembly", "zh_steve.agent",
                                               "zh_steve.testing", "alignment", "eval"))}
    for m in ("zh_steve.prior", "zh_steve.policy", "zh_steve.text.mineclip_text", "zh_steve.text.chinese_clip",
              "zh_steve.text.language", "zh_steve.alignment_layer"):
        assert not (_reach(graph, m) & upper), (m, _reach(graph, m) & upper)
    weights = {m for m in graph if m.startswith("zh_steve.weights")}
    models = {m for m in graph if m.startswith(("zh_steve.policy", "zh_steve.prior", "zh_steve.text"))}
    for m in weights:  # the weights stack reads files into state dicts; it builds no model
        assert not (_reach(graph, m) & models), (m, _reach(graph, m) & models)
