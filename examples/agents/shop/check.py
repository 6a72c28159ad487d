"""The deterministic check: the agent's last number equals the shop's true answer."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from catalog import answer  # noqa: E402


def judge(output: str, instance: int, seed: int) -> bool:
    """The last number of the output (not a SKU's digit: "B2") equals the true answer."""
    numbers = re.findall(r"(?<![A-Za-z\d.])-?\d+(?:\.\d+)?", output.replace(",", "").replace("$", ""))
    return bool(numbers) and abs(float(numbers[-1]) - answer(instance)) < 1e-6
