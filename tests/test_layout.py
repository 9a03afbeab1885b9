"The package's layout: imports point down, never in a circle, not even inside a function"
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / 'esc50_norm'


def _name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def import_graph() -> dict:
    "Module -> the package modules it imports anywhere in its source (top level or inside a function)"
    graph = {}
    for f in PKG.rglob('*.py'):
        mod, edges = _name(f), set()
        pkg = mod if f.name == '__init__.py' else mod.rpartition('.')[0]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    up = pkg.split('.')[:len(pkg.split('.')) - node.level + 1]
                    base = '.'.join(up + ([base] if base else []))
                for alias in node.names:           # `from . import x` imports the submodule x when there is one
                    full = f"{base}.{alias.name}"
                    edges.add(full if (PKG.parent / (full.replace('.', '/') + '.py')).exists() else base)
            elif isinstance(node, ast.Import): edges |= {a.name for a in node.names}
        graph[mod] = {e for e in edges if e.startswith('esc50_norm') and e != mod}
    return graph


def test_no_two_modules_import_each_other_directly_or_in_a_circle():
    graph, cycles = import_graph(), []
    def visit(m, path):
        for n in graph.get(m, ()):
            if n in path: cycles.append(path[path.index(n):] + [n])
            elif n not in done: visit(n, path + [n])
        done.add(m)
    done = set()
    for m in sorted(graph): visit(m, [m])
    assert not cycles, f"import cycles: {cycles[:3]}"
    assert 'esc50_norm.study.engines' in graph['esc50_norm.study.cli'] and len(graph) > 25     # the graph is really read


def test_the_library_imports_nothing_of_the_study():
    lib = {m: e for m, e in import_graph().items() if not m.startswith('esc50_norm.study')}
    assert not {m: e for m, e in lib.items() if any(x.startswith('esc50_norm.study') for x in e)}
