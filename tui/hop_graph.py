"""The hop graph drawn in text: one line per hop in topological order, indented by depth,
with each hop's mark and colour given by its outcome (error kind).

A DAG is drawn as a layered list rather than boxes and arrows: it fits an 80-column terminal at
any depth, and a hop with several parents (a fan-in) names them (``← a, b``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from .data import ERROR_MARK, ERROR_STYLE

__all__ = ["GraphNode", "graph_lines", "HopGraph"]

_MAX_INDENT = 12


@dataclass(frozen=True)
class GraphNode:
    hop_id: str
    parents: tuple[str, ...]
    depth: int
    kind: str = "llm"
    #: an error kind (none, local, propagated, ...), "pending" when not run, or None (no outcome)
    outcome: str | None = None


def graph_line(node: GraphNode, previous: str | None) -> Text:
    indent = " " * min(node.depth - 1, _MAX_INDENT)
    connector = "└" if node.depth > 1 else ""
    line = Text(indent + connector, style="grey50")
    if node.outcome is None:
        style = "bold cyan" if node.kind == "llm" else "bold yellow"
        line.append("● " + node.hop_id, style=style)
    else:
        style = ERROR_STYLE.get(node.outcome, "")
        line.append(f"{ERROR_MARK.get(node.outcome, '·')} {node.hop_id}", style=style)
    if node.kind != "llm":
        line.append(f" [{node.kind}]", style="yellow")
    if len(node.parents) > 1 or (node.parents and node.parents[0] != previous):
        line.append(" ← " + ", ".join(node.parents), style="grey50")
    if node.outcome not in (None, "none", "pending"):
        line.append(f" {node.outcome}", style=style)
    return line


def graph_lines(nodes: Iterable[GraphNode]) -> list[Text]:
    """The graph as rich Text lines (used by the scenario preview and by :class:`HopGraph`)."""
    out: list[Text] = []
    previous: str | None = None
    for node in nodes:
        out.append(graph_line(node, previous))
        previous = node.hop_id
    return out


class HopGraph(OptionList):
    """A selectable hop graph: highlighting a hop shows its trace (``OptionHighlighted``)."""

    def set_nodes(self, nodes: list[GraphNode], *, keep: str | None = None) -> None:
        self.clear_options()
        self.add_options([Option(line, id=n.hop_id) for n, line in zip(nodes, graph_lines(nodes), strict=True)])
        if nodes:
            self.select_hop(keep if keep is not None else nodes[0].hop_id)

    def select_hop(self, hop_id: str) -> bool:
        try:
            self.highlighted = self.get_option_index(hop_id)
        except Exception:  # noqa: BLE001 - OptionDoesNotExist: the hop is not in this graph
            return False
        return True

    @property
    def selected_hop(self) -> str | None:
        if self.highlighted is None:
            return None
        return self.get_option_at_index(self.highlighted).id
