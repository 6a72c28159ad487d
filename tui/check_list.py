"""A SelectionList whose unchecked boxes are empty: Textual draws ``X`` in every box and tells
checked from unchecked by colour alone, which a monochrome terminal, a screenshot or a
colour-blind user cannot see. Checked boxes show ``X``, unchecked ones a blank."""

from __future__ import annotations

from typing import TypeVar

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import SelectionList
from textual.widgets._toggle_button import ToggleButton

__all__ = ["CheckList"]

T = TypeVar("T")


class CheckList(SelectionList[T]):
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        _, scroll_y = self.scroll_offset
        index = scroll_y + y
        if index >= self.option_count:
            return strip
        if self.get_option_at_index(index).value in self._selected:
            return strip
        segments = list(strip)
        if len(segments) > 1 and segments[1].text == ToggleButton.BUTTON_INNER:
            segments[1] = Segment(" " * len(ToggleButton.BUTTON_INNER), segments[1].style)
            return Strip(segments, strip.cell_length)
        return strip
