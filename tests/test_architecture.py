"""The package's shape: no import cycles, and no layer imports one above.

The import graph is read from the source with ``ast``: every ``import`` and
``from ... import`` of a tsneviz module, at module level or inside a
function (a lazy import still couples the two modules, and a cycle of lazy
imports is one edit away from an import-time failure). Importing
``tsneviz.a.b`` also runs ``tsneviz/a/__init__.py``, so it counts as an
import of ``tsneviz.a`` too, except from inside ``tsneviz.a`` (whose
``__init__`` has run by then).
"""
import ast
import os
import os.path as osp
from typing import Dict, List, Set

import pytest

from tests.conftest import REPO

PACKAGE = osp.join(REPO, 'tsneviz')

# The main layers, lowest first: a module may import its own layer and the
# ones below. The folders follow the data flow (config -> model -> data ->
# extraction -> reduction -> run directory -> analysis -> pipeline -> apis
# -> server).
LAYERS = [
    ('core', ['tsneviz', 'tsneviz.errors', 'tsneviz.params',
              'tsneviz.registry', 'tsneviz.progress', 'tsneviz.cli',
              'tsneviz.labels', 'tsneviz.checkpoint', 'tsneviz.metrics',
              'tsneviz.demo', 'tsneviz.fonts']),
    ('steps', ['tsneviz.config', 'tsneviz.model', 'tsneviz.data',
               'tsneviz.extraction', 'tsneviz.reduction', 'tsneviz.rundir']),
    ('analysis', ['tsneviz.analysis', 'tsneviz.visualization',
                  'tsneviz.report', 'tsneviz.compare', 'tsneviz.explorer',
                  'tsneviz.exporters']),
    ('pipeline', ['tsneviz.pipeline']),
    ('apis', ['tsneviz.apis']),
    ('server', ['tsneviz.server']),
]


def _modules() -> Dict[str, str]:
    """``{dotted name: file}`` of every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = osp.join(folder, name)
            dotted = osp.relpath(path, REPO)[:-3].replace(os.sep, '.')
            if dotted.endswith('.__init__'):
                dotted = dotted[:-len('.__init__')]
            found[dotted] = path
    return found


def _is_ancestor(package: str, module: str) -> bool:
    return module.startswith(package + '.')


def _imported(module: str, path: str, node, modules) -> List[str]:
    """The tsneviz modules one import statement makes ``module`` run."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ''
        if node.level:
            package = module if path.endswith('__init__.py') \
                else module.rpartition('.')[0]
            for _ in range(node.level - 1):
                package = package.rpartition('.')[0]
            base = package + ('.' + base if base else '')
        names = []
        for alias in node.names:
            if f'{base}.{alias.name}' in modules:
                # ``from a import b`` of the submodule a.b; a itself only
                # counts from outside it (inside, a's __init__ has run)
                names.append(f'{base}.{alias.name}')
                if not _is_ancestor(base, module):
                    names.append(base)
            else:  # a name defined in a (its __init__ for a package)
                names.append(base)
    out = []
    for name in names:
        while name and name not in modules:
            name = name.rpartition('.')[0]
        if name:
            out.append(name)
    return out


def import_graph() -> Dict[str, Set[str]]:
    """``{module: modules it imports}`` for every tsneviz module."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        edges = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported(module, path, node, modules):
                edges.add(target)
                # its packages' __init__ run too, unless they are ours
                parent = target.rpartition('.')[0]
                while parent:
                    if not _is_ancestor(parent, module):
                        edges.add(parent)
                    parent = parent.rpartition('.')[0]
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of a module (longest prefix wins)."""
    best, depth = None, -1
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + '.')) and \
                    len(prefix) > depth:
                best, depth = rank, len(prefix)
    return best


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    # a function-level import (the analysis steps import the report lazily)
    assert 'tsneviz.report' in graph['tsneviz.analysis.steps']
    # a relative import, and the package __init__ it runs
    assert 'tsneviz.reduction.base' in graph['tsneviz.reduction.tsne.base']
    assert 'tsneviz.analysis' in graph['tsneviz.pipeline.result']


def test_an_import_of_a_name_from_the_own_package_counts():
    # ``from tsneviz.x import name`` inside tsneviz.x.y runs x's __init__
    # for that name: an edge; ``from tsneviz.x import submodule`` is not
    modules = {'tsneviz.x': 'x/__init__.py', 'tsneviz.x.y': 'x/y.py',
               'tsneviz.x.z': 'x/z.py'}
    by_name = ast.parse('from tsneviz.x import helper').body[0]
    by_module = ast.parse('from tsneviz.x import z').body[0]
    assert _imported('tsneviz.x.y', 'x/y.py', by_name, modules) == \
        ['tsneviz.x']
    assert _imported('tsneviz.x.y', 'x/y.py', by_module, modules) == \
        ['tsneviz.x.z']


def test_find_cycles_finds_a_cycle_of_lazy_imports():
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
    assert find_cycles(graph) == [['a', 'b', 'c']]
    assert find_cycles({'a': {'b'}, 'b': set()}) == []


def test_no_import_cycle_inside_tsneviz():
    cycles = find_cycles(import_graph())
    assert not cycles, 'import cycles: ' + '; '.join(
        ' <-> '.join(cycle) for cycle in cycles)


def test_every_module_has_a_layer():
    missing = [m for m in _modules() if layer_of(m) is None]
    assert not missing, f'add these to LAYERS: {missing}'


@pytest.mark.parametrize('layer', [name for name, _ in LAYERS])
def test_no_module_imports_a_layer_above_it(layer):
    graph = import_graph()
    rank = [name for name, _ in LAYERS].index(layer)
    upward = sorted(
        f'{module} -> {target} ({LAYERS[layer_of(target)][0]})'
        for module, targets in graph.items() if layer_of(module) == rank
        for target in targets
        if target != 'tsneviz' and layer_of(target) > rank)
    assert not upward, f'{layer} imports a layer above it: {upward}'


def test_apis_only_re_exports():
    # tsneviz.apis is the public surface, not a step: every name in its
    # __all__ is defined in the module of its step.
    import tsneviz.apis as apis
    for name in apis.__all__:
        obj = getattr(apis, name)
        assert obj.__module__ != 'tsneviz.apis', name
    with open(osp.join(PACKAGE, 'apis', '__init__.py')) as f:
        tree = ast.parse(f.read())
    defined = [node.name for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    assert defined == ['__getattr__']


def test_tools_import_the_installed_package():
    # the package is installed (``pip install -e .``): a tool that puts
    # its checkout on sys.path would run a different tsneviz from the one
    # the tests and the API import
    for name in sorted(os.listdir(osp.join(REPO, 'tools'))):
        if name.endswith('.py'):
            with open(osp.join(REPO, 'tools', name), encoding='utf-8') as f:
                assert 'sys.path' not in f.read(), name


def test_no_checkout_folder_is_found_relative_to_the_package():
    # installed, the package's folder is site-packages: nothing of the
    # checkout (tools, configs) lies beside it
    checkout = {'tools', 'configs', 'benchmarks', 'data', 'work_dirs'}
    for module, path in _modules().items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and \
                    getattr(node.func, 'attr', '') == 'join':
                dumped = ast.dump(node)
                names = {a.value for a in node.args
                         if isinstance(a, ast.Constant)}
                assert not ('__file__' in dumped and names & checkout), \
                    f'{module}:{node.lineno}'
