"""Write the documentation screenshots (docs/tui-*.svg) from the same states as the snapshots.

Run from the repository root: ``python -m tests.tui.make_screenshots``. The data are the fixed
test database (seeded noisy runs, counting clocks, fixed energy estimate), so the pictures are
reproducible.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from . import states
from .helpers import build_fixed_db, make_test_app

DOCS = Path(__file__).resolve().parents[2] / "docs"

SHOTS = [
    ("tui-scenarios.svg", "scenarios_preview", "scenarios", True),
    ("tui-scenarios-error.svg", "scenarios_error", "scenarios", True),
    ("tui-launch.svg", "launch_done", "launch", True),
    ("tui-runs.svg", "runs_list", "runs", False),
    ("tui-compare.svg", "compare", "runs", False),
    ("tui-trace.svg", "trace_root_cause", "trace", False),
    ("tui-help.svg", "help_screen", "runs", False),
]


async def shoot(name: str, state: str, start: str, db: Path, size: tuple[int, int]) -> None:
    from textual.widgets import Input

    Input._toggle_cursor = lambda _self: None  # type: ignore[method-assign]
    app = make_test_app(db, start=start, refresh_s=3600)
    async with app.run_test(size=size) as pilot:
        await getattr(states, state)(pilot)
        app.save_screenshot(filename=name, path=str(DOCS))
    print("wrote", DOCS / name)


async def main() -> None:
    DOCS.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="agentsim-shots-"))
    master = build_fixed_db(work / "master.db")
    for i, (name, state, start, fresh) in enumerate(SHOTS):
        folder = work / str(i)
        folder.mkdir()
        db = folder / "runs.db"
        if not fresh:
            shutil.copy(master, db)
        await shoot(name, state, start, db, (100, 30))


if __name__ == "__main__":
    asyncio.run(main())
