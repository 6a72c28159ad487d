"""What every screen has: a one-line navigation bar on top and the key footer at the bottom."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

if TYPE_CHECKING:
    from .app import AgentsimApp
    from .context import AppContext

__all__ = ["NavBar", "AgentsimScreen", "SCREENS_ORDER"]

#: (mode, key, title) of the main screens, in the order of their keys
SCREENS_ORDER: list[tuple[str, str, str]] = [
    ("scenarios", "1", "Scenarios"),
    ("launch", "2", "Launch"),
    ("runs", "3", "Runs"),
    ("trace", "4", "Trace"),
]


class NavBar(Static):
    """``1 Scenarios 2 Launch 3 Runs 4 Trace`` with the current screen highlighted, and the db."""

    def __init__(self, current: str, db: str) -> None:
        super().__init__(id="navbar")
        self.current = current
        self.db = db

    def render(self) -> Text:
        t = Text(" agentsim ", style="bold reverse")
        for mode, key, title in SCREENS_ORDER:
            style = "bold reverse" if mode == self.current else ""
            t.append(" ")
            t.append(f" {key} {title} ", style=style or "")
        name = Path(self.db).name if "://" not in self.db else self.db
        t.append(f"  {name}", style="dim")
        t.append("  ? help", style="dim")
        t.truncate(self.size.width or 200)
        return t


class AgentsimScreen(Screen[None]):
    """A main screen: subclasses set ``MODE`` and implement ``compose_body``."""

    MODE: ClassVar[str] = ""
    BINDINGS = [Binding("escape", "leave_field", "Leave field", show=False)]

    @property
    def ctx(self) -> AppContext:
        return self.agentsim_app.ctx

    @property
    def agentsim_app(self) -> AgentsimApp:
        # screens do not import the app (it imports them): the type is for the checker only
        return cast("AgentsimApp", self.app)

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE, self.ctx.db)
        yield from self.compose_body()
        yield Footer()

    def action_leave_field(self) -> None:
        """Escape from a text field back to the screen's first list (where the keys work)."""
        from textual.widgets import DataTable, Input, OptionList, SelectionList

        if isinstance(self.focused, Input):
            for widget in self.query("SelectionList, OptionList, DataTable"):
                if isinstance(widget, (SelectionList, OptionList, DataTable)) and widget.can_focus:
                    widget.focus()
                    return

    def compose_body(self) -> ComposeResult:  # pragma: no cover - abstract
        raise NotImplementedError
