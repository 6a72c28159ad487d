"""``?``: every key binding, read from the screens' own BINDINGS (so it never goes stale)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HelpScreen", "key_table"]


def _rows(bindings: list[BindingType]) -> list[tuple[str, str]]:
    out = []
    for b in bindings:
        if isinstance(b, Binding):
            keys = b.key_display or ", ".join(k.strip() for k in b.key.split(","))
            out.append((keys, b.description or b.action))
        elif isinstance(b, tuple):
            out.append((b[0], b[2] if len(b) > 2 else b[1]))
    return out


def key_table(groups: list[tuple[str, list[Any]]]) -> Table:
    """All keys, grouped by screen (the app hands over its screens' bindings: this module
    imports no screen and not the app)."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    for title, bindings in groups:
        t.add_row(Text(title, style="bold underline"), "")
        for keys, desc in _rows(list(bindings)):
            t.add_row(keys, desc)
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", key_display="esc")]

    def __init__(self, groups: list[tuple[str, list[Any]]]) -> None:
        super().__init__()
        #: (title, bindings) per screen, as the app lists them
        self.groups = groups

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(
                "Hop marks: ✓ right · ✗ local error · ↓ propagated from a parent · "
                "↺ recovered · ? unparseable · ! backend failed\n"
                "Energy is always shown with its kind: measured, estimated or unavailable.\n"
                "tab / shift+tab move between panels; arrows move within one.",
                id="help-intro",
            )
            yield Static(key_table(self.groups), id="help-keys")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
