"The package's layout: imports point down, never in a circle, not even inside a function"
import ast
import re
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


def _listed(text: str, modules: set) -> list:
    "The module names of `modules`, in the order `text` names them in backticks (other backticked names left out)"
    return [m for m in dict.fromkeys(re.findall(r"`(\w+)`", text)) if m in modules]


def test_each_module_imports_only_those_listed_before_it():
    """The order the Layout of docs/development.md and study/__init__.py give: the library's base (named last, after
    'Beneath them all'), the library in reading order, then the study; all modules"""
    graph = import_graph()
    lib = {m.split('.')[1] for m in graph if m.count('.') == 1 and not m.endswith('.study')}
    study = {m.split('.')[2] for m in graph if m.startswith('esc50_norm.study.')}
    layout = (PKG.parent / 'docs' / 'development.md').read_text().split('## Layout')[1].split('\n## ')[0]
    lib_part, study_part = layout.split('- `esc50_norm/study/`')
    lib_part, base_part = lib_part.split('Beneath them all')
    reading = _listed(lib_part, lib)
    lib_order = _listed(base_part, lib) + reading
    study_order = _listed(study_part, study)
    doc = ast.get_docstring(ast.parse((PKG / 'study' / '__init__.py').read_text()))
    assert _listed(doc, study) == study_order and study_order == list(dict.fromkeys(study_order))
    assert sorted(lib_order) == sorted(lib) and set(study_order) == study
    assert reading[0] == 'audio' and reading.index('normalize') < 5        # the reading order starts with the subject
    order = [f"esc50_norm.{m}" for m in lib_order] + [f"esc50_norm.study.{m}" for m in study_order]
    late = {m: sorted(e for e in graph[m] if e in order and order.index(e) > order.index(m)) for m in order}
    assert not {m: e for m, e in late.items() if e}, 'modules importing one listed after them'


def test_lines_a_reader_can_take_in():
    "At most 1% of the package's lines are over 120 characters, and no one-liner `def f(): \"docstring\"; return x`"
    lines = [(f, n, l) for f in sorted(PKG.rglob('*.py')) for n, l in enumerate(f.read_text().splitlines(), 1)]
    long = [f"{f.relative_to(PKG.parent)}:{n} ({len(l)})" for f, n, l in lines if len(l) > 120]
    one_liners = [f"{f.relative_to(PKG.parent)}:{n}" for f, n, l in lines if re.match(r'^\s*def .*:\s*"[^"]*";', l)]
    assert len(lines) > 3000                                   # the package is really read
    assert len(long) <= len(lines) // 100, f"{len(long)} of {len(lines)} lines are over 120 characters: {long[:10]}"
    assert not one_liners, f"one-liner defs with a docstring and `;`: {one_liners}"


def test_an_install_holds_every_package_of_the_source():
    """pyproject's packages, as setuptools expands them for a wheel, are every folder of esc50_norm with an
    __init__.py: a wheel without esc50_norm.study.datasets or .report installs an `esc50-norm` that cannot start"""
    from setuptools.config.pyprojecttoml import read_configuration
    packages = read_configuration(PKG.parent / 'pyproject.toml', expand=True)['tool']['setuptools']['packages']
    assert sorted(packages) == sorted(_name(f) for f in PKG.rglob('__init__.py'))
