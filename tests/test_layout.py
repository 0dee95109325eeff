"""The package's layout: programs in graves_tf/cli/, libraries that define no flags, no import circle.

* Importing any library module (everything but ``graves_tf.cli``) defines no absl flag: only the
  programs do, when imported or run (their flag groups are functions of :mod:`graves_tf.experiment`).
* No two modules of graves_tf import each other, directly or through others, counting the imports
  inside functions (run when called) and not the ``if __name__ == "__main__":`` block of a thin
  ``python -m`` module (run only as a program).
* The ``python -m graves_tf.NAME`` modules are thin: they call their program in graves_tf/cli/.
"""

import ast
import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# Where each part of the graves_tf namespace lives in a checkout (setup.py's package_dir).
ROOTS = {
    "graves_tf": REPO / "graves_tf",
    "graves_tf.export": REPO / "export",
    "graves_tf.tfds_builders": REPO / "tfds_builders",
}
THIN = {  # python -m NAME -> the program it runs
    "graves_tf.train": "graves_tf.cli.train",
    "graves_tf.evaluate": "graves_tf.cli.evaluate",
    "graves_tf.gallery": "graves_tf.cli.gallery",
    "graves_tf.pretrained.release": "graves_tf.cli.release",
    "graves_tf.export.__main__": "graves_tf.cli.export",
    "graves_tf.write": "graves_tf.cli.write",
    "graves_tf.serve": "graves_tf.cli.serve",
    "graves_tf.average_checkpoints": "graves_tf.cli.average_checkpoints",
}


def module_files():
    """``{module name: path}`` of every module of the graves_tf namespace in the checkout."""
    modules = {}
    for prefix, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "dummy_data" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((prefix, *parts))] = path
    return modules


def is_main_block(node):
    """``if __name__ == "__main__":``."""
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
        and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def imported_modules(name, path, known):
    """The modules of ``known`` that module ``name`` imports (anywhere but its ``__main__`` block)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def visit(node):
        if is_main_block(node):
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    resolved = set()
    for target in found:
        while target and target not in known:  # `import a.b.c` of a non-module attribute: its module
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def import_graph():
    modules = module_files()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def circles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def connect(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_graph_sees_the_imports_it_must():
    """The checker finds the imports it is there to follow (so an empty answer below means something)."""
    graph = import_graph()
    assert "graves_tf.experiment" in graph["graves_tf.cli.train"]
    assert "graves_tf.training" in graph["graves_tf.cli.train"]  # an import inside a function
    assert "graves_tf.export.saved_model" in graph["graves_tf.cli.export"]
    assert "graves_tf.run_dir" in graph["graves_tf.pretrained"]
    assert "graves_tf.tfds_builders.iam_ondb.iam_ondb_dataset_builder" in graph["graves_tf.tfds_builders.iam_ondb"]
    assert "graves_tf.cli.train" not in graph["graves_tf.train"]  # only in its __main__ block
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_the_library_does_not_import_the_programs():
    graph = import_graph()
    offenders = {
        name: sorted(t for t in targets if t.startswith("graves_tf.cli"))
        for name, targets in graph.items() if not name.startswith("graves_tf.cli")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


@pytest.mark.parametrize("thin, program", sorted(THIN.items()))
def test_each_python_m_module_runs_its_program(thin, program):
    modules = module_files()
    tree = ast.parse(modules[thin].read_text(encoding="utf-8"))
    mains = [node for node in tree.body if is_main_block(node)]
    assert len(mains) == 1, thin
    calls = {n.module for n in ast.walk(mains[0]) if isinstance(n, ast.ImportFrom)}
    assert calls == {program}, (thin, calls)
    assert program in modules and "def run():" in modules[program].read_text(encoding="utf-8")


# Imports every module of the namespace but the programs, after absl.app (whose --help flags are absl's),
# and lists the flags each one added with the module that defined them.
_IMPORT_ALL = r"""
import importlib, json, sys
from absl import app, flags, logging  # absl's own flags
import tensorflow, keras, tensorflow_datasets  # and whatever these define
before = set(flags.FLAGS)
added = {}
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
    new = set(flags.FLAGS) - before
    if new:
        added[name] = sorted(new)
    before |= new
owners = sorted({m for m in flags.FLAGS.flags_by_module_dict() if m.startswith("graves_tf") or "/graves_tf/" in m})
print(json.dumps({"added": added, "owners": owners}))
"""


def test_no_library_module_defines_flags():
    """Every library module imported in one process, flags unparsed: none defines a flag."""
    names = sorted(
        name for name in module_files()
        if not name.startswith("graves_tf.cli") and not name.endswith(".__main__")
    )
    assert "graves_tf.experiment" in names and "graves_tf.write" in names and "graves_tf.serve" in names
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, json.dumps(names)], capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"added": {}, "owners": []}


def test_the_programs_define_the_flags_the_libraries_do_not():
    """The check above can fail: importing a program defines its flags (and the experiment groups)."""
    code = (
        "from absl import app, flags, logging\n"
        "import tensorflow, keras\n"
        "before = set(flags.FLAGS)\n"
        "import graves_tf.experiment, graves_tf.write\n"
        "assert set(flags.FLAGS) == before\n"
        "import graves_tf.cli.write\n"
        "added = set(flags.FLAGS) - before\n"
        "assert {'bias', 'model_dir', 'units', 'train_steps', 'data_dir'} <= added, sorted(added)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
