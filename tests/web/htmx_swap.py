"""What htmx would make of an answer: parse the page, find the element that fires a request, work out its
target and swap the way htmx does (inherited ``hx-target``/``hx-swap``, ``HX-Reswap``, out-of-band
elements), and apply the answer to the page. Built on the standard library's HTML parser."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass(eq=False)
class Node:
    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list = field(default_factory=list)  # Nodes and text
    parent: Node | None = None

    def elements(self):
        """Every element below this one, in document order."""
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.elements()

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def by_id(self, element_id: str) -> Node | None:
        return next((e for e in self.elements() if e.attrs.get("id") == element_id), None)

    def inherited(self, name: str) -> str | None:
        """An attribute htmx inherits: this element's, else the nearest ancestor's."""
        node = self
        while node is not None:
            if name in node.attrs:
                return node.attrs[name]
            node = node.parent
        return None

    def replace_with(self, nodes: list) -> None:
        siblings = self.parent.children
        at = siblings.index(self)
        siblings[at:at + 1] = nodes
        for node in nodes:
            if isinstance(node, Node):
                node.parent = self.parent

    def set_children(self, nodes: list) -> None:
        self.children = list(nodes)
        for node in nodes:
            if isinstance(node, Node):
                node.parent = self


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.open = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), parent=self.open)
        self.open.children.append(node)
        if tag not in VOID:
            self.open = node

    def handle_startendtag(self, tag, attrs):
        self.open.children.append(Node(tag, dict(attrs), parent=self.open))

    def handle_endtag(self, tag):
        node = self.open
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.open = node.parent

    def handle_data(self, data):
        self.open.children.append(data)


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def trigger(page: Node, method: str, url: str, *, label: str | None = None) -> Node:
    """The one element in the page that sends ``method`` (get or post) to ``url`` through htmx (the one
    whose text contains ``label``, when several do)."""
    found = [e for e in page.elements() if e.attrs.get(f"hx-{method}") == url
             and (label is None or label in e.text())]
    assert len(found) == 1, f"{len(found)} elements in the page send hx-{method} to {url}"
    return found[0]


def form_data(form: Node) -> dict[str, str]:
    """What the browser submits for a form as it stands in the page."""
    data = {}
    for element in form.elements():
        name = element.attrs.get("name")
        if not name or element.tag not in ("input", "select", "textarea"):
            continue
        if element.tag == "select":
            options = [o for o in element.elements() if o.tag == "option"]
            chosen = next((o for o in options if "selected" in o.attrs), options[0] if options else None)
            if chosen is not None:
                data[name] = chosen.attrs.get("value") or chosen.text()
        elif element.tag == "textarea":
            data[name] = element.text()
        elif element.attrs.get("type") in ("checkbox", "radio"):
            if "checked" in element.attrs:
                data[name] = element.attrs.get("value") or "on"
        elif element.attrs.get("type") not in ("submit", "button"):
            data[name] = element.attrs.get("value") or ""
    return data


def target_and_swap(page: Node, element: Node) -> tuple[Node | None, str]:
    """Where htmx puts the answer to ``element``'s request, and how (htmx's default: innerHTML of itself)."""
    selector = element.inherited("hx-target") or "this"
    swap = (element.inherited("hx-swap") or "innerHTML").split()[0]
    if selector == "this":
        return element, swap
    assert selector.startswith("#"), f"unexpected hx-target {selector!r}"
    target = page.by_id(selector[1:])
    assert target is not None, f"hx-target {selector} is not in the page"
    return target, swap


def apply(page: Node, target: Node | None, swap: str, body: str, headers) -> list[str]:
    """Swap ``body`` into ``page`` as htmx would; returns problems htmx would hide (dropped OOB elements)."""
    swap = headers.get("HX-Reswap", swap)
    fragment = parse(body)
    problems = []
    for element in [e for e in fragment.elements() if "hx-swap-oob" in e.attrs]:
        # htmx 2 swaps out-of-band elements wherever they are in the answer, and takes them out of it.
        element.replace_with([])
        how = element.attrs.pop("hx-swap-oob") or "true"
        style = "outerHTML" if how == "true" else how
        selector = "#" + (element.attrs.get("id") or "")
        if ":" in style:  # "style:selector": swap onto another element than the namesake
            style, selector = style.split(":", 1)
        assert selector.startswith("#"), f"unexpected hx-swap-oob selector {selector!r}"
        into = page.by_id(selector[1:])
        if into is None:
            problems.append(f"out-of-band {selector} has nothing to replace")
        elif style == "outerHTML":
            into.replace_with([element])
        elif style == "innerHTML":
            into.set_children(element.children)
        elif style == "delete":
            into.replace_with([])
        elif style == "afterend":  # any other style swaps the out-of-band element's children
            siblings = into.parent.children
            at = siblings.index(into) + 1
            siblings[at:at] = element.children
            for node in element.children:
                if isinstance(node, Node):
                    node.parent = into.parent
        else:
            problems.append(f"unexpected hx-swap-oob {how!r}")
    if swap == "none" or target is None:
        if any(isinstance(c, Node) for c in fragment.children):
            problems.append("an answer that swaps nothing carries markup besides out-of-band elements")
    elif swap == "outerHTML":
        target.replace_with(fragment.children)
    elif swap == "innerHTML":
        target.set_children(fragment.children)
    else:
        problems.append(f"unexpected hx-swap {swap!r}")
    return problems


def duplicate_ids(page: Node) -> dict[str, int]:
    counts = Counter(e.attrs["id"] for e in page.elements() if e.attrs.get("id"))
    return {element_id: n for element_id, n in counts.items() if n > 1}
