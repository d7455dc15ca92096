"""The package's layers, read from the source: no import circles, and each layer imports only those below it.

Every module under ``portal/`` is parsed with ``ast`` and every import counts, including those inside
functions (a lazy import is still a dependency; it only hides a circle until the day it runs first).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import portal

ROOT = Path(portal.__file__).resolve().parent

# Frameworks of the web layer. Everything else must work without a request (the worker, the CLI).
WEB_FRAMEWORKS = ("flask", "flask_login", "flask_wtf", "flask_limiter", "htmx_flask", "werkzeug",
                  # the API's: Flask-Smorest and the schema libraries it validates and documents with
                  "flask_smorest", "webargs", "marshmallow", "apispec")
# Who may import them: the web layer, the app factory, the Flask extensions it sets up, and the CLI (which
# serves the app), the benchmark's anchors (its floor is a bare Flask app); and the blueprints in
# OTHER_BLUEPRINTS below.
WEB_ALLOWED = ("portal.web", "portal", "portal.extensions", "portal.cli", "portal.perf.anchors")

SERVICES = ("portal.billing", "portal.auth", "portal.notifications", "portal.payments", "portal.documents")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The portal module an import of ``name`` loads: the module itself, else its nearest package."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> tuple[set[str], set[str]]:
    """(portal modules imported, top-level names of outside packages imported) by ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module
            # ``from . import audit`` loads the module ``audit`` when there is one, else a name of the package.
            targets = [f"{base_name}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "portal" or target.startswith("portal."):
                found = _resolve(target)
                if found and found != module:
                    inside.add(found)
            else:
                outside.add(target.split(".")[0])
    return inside, outside


GRAPH = {module: imports_of(module) for module in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for start in sorted(graph):
        if colour[start] == WHITE:
            found = visit(start)
            if found:
                return found
    return None


def within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


# Blueprints that are not the product's own and so live beside what they serve, outside ``portal/web/``: the
# sandbox processor's stand-ins for Stripe's and the bank's pages, and the demo's mailbox. They are web code
# in every rule below: they may use the web layer and the services, and nothing but the web layer uses them.
OTHER_BLUEPRINTS = ("portal.payments.sandbox.pages", "portal.demo.mailbox")


def is_web_code(module: str) -> bool:
    return within(module, "portal.web") or module in OTHER_BLUEPRINTS


def offences(rule) -> list[str]:
    return sorted(f"{module} imports {target}" for module, (inside, outside) in GRAPH.items()
                  for target in rule(module, inside, outside))


def test_the_graph_is_read_from_the_whole_package():
    # Guards the guard: if parsing or resolving broke, every rule below would pass on an empty graph.
    assert len(MODULES) > 60
    assert "portal.billing.collecting.collection" in GRAPH["portal.billing.subscriptions.renewals"][0]
    assert "portal.audit" in GRAPH["portal.billing.collecting.refunds"][0]  # ``from .. import audit``
    assert "portal.documents.pdf" in GRAPH["portal.notifications.sender"][0]  # imported inside a function
    assert "flask" in GRAPH["portal.web.auth"][1]
    assert all(module in MODULES for module in OTHER_BLUEPRINTS)  # an exception for a module that moved is a hole


def test_there_are_no_import_circles():
    cycle = find_cycle({module: inside for module, (inside, _) in GRAPH.items()})
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_there_are_no_circles_between_packages_either():
    # Modules can avoid a circle while their packages still depend on each other (a.x -> b.y, b.z -> a.w):
    # then neither package can be understood, tested or moved without the other.
    # Billing's capabilities (``portal.billing.invoicing``, ``.collecting``, ...) count as packages of their
    # own: they are grouped so that each can be read from the bottom up.
    def package(module: str) -> str:
        if is_web_code(module):
            return "portal.web"
        depth = 3 if within(module, "portal.billing") else 2
        return ".".join(module.split(".")[:depth])

    graph: dict[str, set[str]] = {}
    for module, (inside, _) in GRAPH.items():
        graph.setdefault(package(module), set()).update(
            package(target) for target in inside if package(target) != package(module))
    cycle = find_cycle(graph)
    assert cycle is None, "packages import each other: " + " -> ".join(cycle)


def test_the_cycle_finder_reports_a_circle_it_is_given():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_web_layer_imports_flask():
    def rule(module, inside, outside):
        if is_web_code(module) or module in WEB_ALLOWED:
            return []
        return [name for name in outside if name in WEB_FRAMEWORKS]

    found = offences(rule)
    assert not found, "\n".join(found)


def test_nothing_below_the_web_layer_imports_it():
    def rule(module, inside, outside):
        if is_web_code(module) or module in WEB_ALLOWED:
            return []
        return [target for target in inside if is_web_code(target)]

    found = offences(rule)
    assert not found, "\n".join(found)


def test_models_import_no_service_and_no_web_code():
    def rule(module, inside, outside):
        if not within(module, "portal.models"):
            return []
        return [target for target in inside if within(target, *SERVICES, "portal.web")]

    found = offences(rule)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("bottom", ["portal.money", "portal.errors", "portal.audit"])
def test_the_shared_pieces_at_the_bottom_import_nothing_above_them(bottom):
    assert bottom in MODULES
    inside, _ = GRAPH[bottom]
    found = sorted(t for t in inside if within(t, *SERVICES, "portal.web", "portal.config"))
    assert not found, f"{bottom} imports " + ", ".join(found)


@pytest.mark.parametrize("lower, upper", [
    ("portal.notifications", "portal.billing"),
    ("portal.documents", "portal.billing"),
    ("portal.documents", "portal.notifications"),
    ("portal.config", "portal.billing"),
    ("portal.payments", "portal.billing"),
    ("portal.auth", "portal.billing"),
])
def test_a_lower_package_does_not_import_a_higher_one(lower, upper):
    assert any(within(module, lower) for module in MODULES)
    found = sorted(f"{module} imports {target}" for module, (inside, _) in GRAPH.items()
                   if within(module, lower) and not is_web_code(module) for target in inside if within(target, upper))
    assert not found, "\n".join(found)
