"""``agentsim import trace``: recorded LLM calls (OTLP JSON with GenAI or OpenInference attributes,
OpenAI JSONL) as a replayable scenario file. See docs/agents.md."""

from __future__ import annotations

from pathlib import Path

from .scenario import scenario_from_recording, write_scenario
from .trace import Recording, read_trace

__all__ = ["import_trace", "read_trace", "scenario_from_recording", "write_scenario", "Recording"]


def import_trace(path: str | Path, out: str | Path, *, name: str | None = None) -> Path:
    """Read ``path``, write the scenario to ``out`` and load it back (it must validate)."""
    from agentsim.scenario import load_scenario

    data = scenario_from_recording(read_trace(path), name=name)
    written = write_scenario(data, out)
    load_scenario(written)
    return written
