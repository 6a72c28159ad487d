"""The README's complete scenario example is the bundled chain-linear.yaml, and it validates."""

from __future__ import annotations

import re
from pathlib import Path

from agentsim.scenario import load_scenario_text

ROOT = Path(__file__).resolve().parents[2]


def test_readme_yaml_example_is_the_bundled_file():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(name: chain-linear.*?)```", readme, flags=re.S).group(1)
    strip = lambda text: [re.sub(r"\s+#.*$", "", line).rstrip() for line in text.splitlines()  # noqa: E731
                          if line.strip() and not line.lstrip().startswith("#")]
    assert strip(block) == strip((ROOT / "scenarios" / "chain-linear.yaml").read_text())
    assert load_scenario_text(block).name == "chain-linear"
