"""The package's shape: no import cycle among its modules, one input pipeline, one
loader per dataset."""

import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "clustercnn_jax")


def module_name(path):
  rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
  return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def import_graph():
  """Module -> the package modules it imports, anywhere in the file (a local import
  inside a function hides a cycle; it does not remove it)."""
  graph = {}
  for root, _, files in os.walk(PACKAGE):
    for f in files:
      if not f.endswith(".py"):
        continue
      path = os.path.join(root, f)
      name = module_name(path)
      is_pkg = f == "__init__.py"
      deps = set()
      for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
          deps |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
          base = node.module or ""
          if node.level:
            parts = name.split(".")[:len(name.split(".")) - node.level + (1 if is_pkg else 0)]
            base = ".".join(parts + ([base] if base else []))
          deps |= {base} | {f"{base}.{a.name}" for a in node.names}
      graph[name] = deps
  known = set(graph)
  return {m: {d for d in deps if d in known and d != m} for m, deps in graph.items()}


def find_cycle(graph):
  state, stack = {}, []

  def visit(m):
    state[m] = "open"
    stack.append(m)
    for d in sorted(graph[m]):
      # A module's parent package is imported first by Python, not a cycle edge.
      if m.startswith(d + "."):
        continue
      if state.get(d) == "open":
        return stack[stack.index(d):] + [d]
      if d not in state and (cycle := visit(d)):
        return cycle
    state[m] = "done"
    stack.pop()
    return None

  for m in sorted(graph):
    if m not in state and (cycle := visit(m)):
      return cycle
  return None


def test_the_cycle_finder_finds_a_cycle():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
  graph = import_graph()
  assert "clustercnn_jax.train" in graph and "clustercnn_jax.checkpoint" in graph
  assert find_cycle(graph) is None


def test_checkpoint_knows_nothing_of_training():
  graph = import_graph()
  assert not graph["clustercnn_jax.checkpoint"] & {"clustercnn_jax.train",
                                                   "clustercnn_jax.train_state"}


def test_one_pipeline_and_one_utkface_loader():
  names = {module_name(os.path.join(r, f)) for r, _, fs in os.walk(PACKAGE) for f in fs
           if f.endswith(".py")}
  assert [n for n in names if "pipeline" in n] == ["clustercnn_jax.data.pipeline"]
  assert [n for n in names if "utkface" in n] == ["clustercnn_jax.data.builders.utkface"]
