"""The package's import graph: one layering, no circles, nothing from tests/.

Every module of ``mmdet_spine`` is parsed with ``ast`` (module-level and function-level
imports, relative imports resolved); the graph between mmdet-spine modules must be acyclic,
and each module may only import from the layers its own layer builds on (``LAYERS``).
"""
import ast
import glob
import os.path as osp
import sys
from collections import defaultdict

import pytest

from helpers import REPO

PACKAGE = 'mmdet_spine'

#: Layer -> the layers it may import (besides itself). A module belongs to the layer with the
#: longest matching dotted prefix (relative to the package); the package roots that only
#: aggregate (``mmdet_spine/__init__.py``, ``models/__init__.py``) may import their children.
LAYERS = {
    'errors': set(),
    'version': set(),
    'fileio': {'errors'},
    # models: layers <- backbones / necks / heads <- detectors
    'models.layers': {'errors', 'fileio'},
    'models.utils.freezing': {'errors', 'models.layers'},
    'models.backbones': {'errors', 'fileio', 'models.layers', 'models.utils.freezing'},
    'models.necks': {'errors', 'fileio', 'models.layers', 'models.utils.freezing'},
    'models.dense_heads': {'errors', 'fileio', 'models.layers'},
    'models.roi_heads': {'errors', 'fileio', 'models.layers'},
    'models.detectors': {'errors', 'fileio', 'models.layers', 'models.utils.freezing',
                         'models.backbones', 'models.necks', 'models.dense_heads',
                         'models.roi_heads'},
    'models.utils': {'errors', 'fileio', 'models.layers', 'models.utils.freezing',
                     'models.backbones', 'models.necks', 'models.dense_heads',
                     'models.roi_heads', 'models.detectors'},
    'models': {'errors', 'fileio'},  # models/__init__.py imports its children (see below)
    'datasets': {'errors', 'fileio', 'models'},
    'classification': {'errors', 'fileio', 'models', 'datasets'},
    'converters': {'errors', 'fileio', 'models'},
    'zoo': {'errors', 'fileio', 'models', 'converters'},
    'engine': {'errors', 'fileio', 'models', 'datasets', 'classification', 'converters', 'zoo'},
    'deployment': {'errors', 'fileio', 'models', 'engine'},
    # the tools' measurement code: on top of everything, imported by nothing of the package
    'analysis': {'errors', 'fileio', 'models', 'datasets', 'classification', 'converters', 'zoo',
                 'engine'},
}


def _module_name(path: str) -> str:
    rel = osp.relpath(path, REPO)[:-len('.py')].replace(osp.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def _modules():
    return {_module_name(p): p for p in
            glob.glob(osp.join(REPO, PACKAGE, '**', '*.py'), recursive=True)}


def _is_package(path: str) -> bool:
    return osp.basename(path) == '__init__.py'


def _imports(name: str, path: str, modules):
    """(imported module, line, function-level?) for every import in the file."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    package = name if _is_package(path) else name.rpartition('.')[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            subs = [f'{target}.{a.name}' for a in node.names if f'{target}.{a.name}' in modules]
            # `from pkg import submodule` imports the submodule (pkg itself is only the parent)
            if len(subs) < len(node.names):
                found.append((target, node.lineno))
            found += [(sub, node.lineno) for sub in subs]
    return found


@pytest.fixture(scope='module')
def graph():
    modules = _modules()
    edges = defaultdict(set)
    external = defaultdict(set)
    for name, path in modules.items():
        for target, line in _imports(name, path, modules):
            top = target.split('.')[0]
            if target in modules and target != name:
                edges[name].add((target, line))
            elif top == PACKAGE and target not in modules:
                # an attribute of a module (`from mmdet_spine.x import y` handled above)
                owner = target
                while owner and owner not in modules:
                    owner = owner.rpartition('.')[0]
                if owner and owner != name:
                    edges[name].add((owner, line))
            else:
                external[name].add((top, line))
    return modules, edges, external


def test_the_graph_covers_the_package(graph):
    modules, edges, _ = graph
    assert len(modules) > 50
    for must in ('mmdet_spine.errors', 'mmdet_spine.fileio.safe_load', 'mmdet_spine.engine.cli',
                 'mmdet_spine.zoo.model_index', 'mmdet_spine.models.backbones.spinenet'):
        assert must in modules
    assert not edges['mmdet_spine.errors']  # the bottom layer imports nothing of ours
    # function-level imports are seen too (the old circle was held by one)
    assert any(t == 'mmdet_spine.models.backbones.tf_efficientnet'
               for t, _ in edges['mmdet_spine.models.detectors.efficientdet_scaling'])


def _cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w, _ in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles(graph):
    _, edges, _ = graph
    cycles = _cycles(edges)
    detail = []
    for comp in cycles:
        members = set(comp)
        detail.append('; '.join(f'{a} -> {b} (line {line})' for a in comp
                                for b, line in sorted(edges[a]) if b in members))
    assert not cycles, 'import cycles:\n' + '\n'.join(detail)


def test_nothing_imports_tests(graph):
    modules, _, external = graph
    test_modules = {'tests'} | {osp.splitext(osp.basename(p))[0] for p in
                                glob.glob(osp.join(REPO, 'tests', '*.py'))}
    bad = [f'{m} imports {t} (line {line})' for m, imps in external.items()
           for t, line in imps if t in test_modules]
    for path in glob.glob(osp.join(REPO, 'tools', '**', '*.py'), recursive=True):
        for target, line in _imports(_module_name(path), path, modules):
            if target and target.split('.')[0] in test_modules:
                bad.append(f'{osp.relpath(path, REPO)} imports {target} (line {line})')
    assert not bad, '\n'.join(bad)


def _layer(module: str) -> str:
    rel = module[len(PACKAGE) + 1:] if module != PACKAGE else ''
    best = ''
    for layer in LAYERS:
        if (rel == layer or rel.startswith(layer + '.')) and len(layer) > len(best):
            best = layer
    return best


def test_every_module_has_a_layer(graph):
    modules, _, _ = graph
    unplaced = [m for m in modules if m != PACKAGE and not _layer(m)]
    assert not unplaced, f'add these to LAYERS: {unplaced}'


def test_layering(graph):
    modules, edges, _ = graph
    bad = []
    for module, targets in edges.items():
        if module == PACKAGE:
            continue  # mmdet_spine/__init__.py imports every subpackage
        own = _layer(module)
        for target, line in targets:
            theirs = _layer(target)
            if theirs == own or any(theirs == a or theirs.startswith(a + '.')
                                    for a in LAYERS[own]):
                continue  # its own layer, or one it builds on (with that layer's sub-layers)
            if _is_package(modules[module]) and target.startswith(module + '.'):
                continue  # a package's __init__ aggregates its own children
            bad.append(f'{module} ({own}) imports {target} ({theirs}) at line {line}; '
                       f'{own} may import: {", ".join(sorted(LAYERS[own])) or "nothing"}')
    assert not bad, '\n'.join(bad)


def test_fileio_and_errors_import_only_the_allowed_libraries(graph):
    _, _, external = graph
    stdlib = set(sys.stdlib_module_names)
    # tqdm: an optional progress bar, imported under try/except ImportError
    allowed = {'errors': stdlib, 'fileio': stdlib | {'numpy', 'torch', 'mmengine', 'tqdm'}}
    bad = [f'{m} imports {t}' for m, imps in external.items() for t, _ in imps
           if _layer(m) in allowed and t not in allowed[_layer(m)]]
    assert not bad, '\n'.join(bad)


def test_the_checks_catch_the_old_circle():
    """engine/checkpoint_safety -> zoo/cache -> zoo/model_index -> engine/cli -> engine/...
    (the circle of session 3, held together by a function-level import)."""
    chain = ['mmdet_spine.engine.checkpoint_safety', 'mmdet_spine.zoo.cache',
             'mmdet_spine.zoo.model_index', 'mmdet_spine.engine.cli']
    old = {a: {(b, 1)} for a, b in zip(chain, chain[1:] + chain[:1])}
    assert _cycles(old) == [sorted(chain)]
    assert 'engine' not in LAYERS[_layer('mmdet_spine.zoo.model_index')]
