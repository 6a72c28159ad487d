"""The HTML report in a real headless browser (Debian's chromium; ``make browser`` installs it):
it opens with the network unreachable, every plot is laid out and drawn (non-white pixels inside
each SVG's box in a screenshot), and the browser logs no console error.

The page's own inline script writes each plot's bounding box into ``<pre id="plot-boxes">``;
``--dump-dom`` returns the page after it ran. Fetches would fail (every host resolves to nothing
and the proxy is a closed local port) and show up as console errors.
"""

from __future__ import annotations

import html as htmlmod
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import agentsim

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser installs it)")

WIDTH = 1280
NO_NETWORK = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


def _chromium(args: list[str], tmp: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    cmd = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--hide-scrollbars",
           "--disable-extensions", "--disable-background-networking", "--disable-sync",
           f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=5000", *NO_NETWORK, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _console_errors(stderr: str) -> list[str]:
    """Console messages of the page at error level, uncaught exceptions and failed loads."""
    out = []
    for line in stderr.splitlines():
        if "CONSOLE" in line and ("ERROR" in line.split("CONSOLE")[0] or "Uncaught" in line):
            out.append(line)
        elif "Uncaught" in line or "net::ERR_" in line and "file://" in line:
            out.append(line)
    return out


def _open(page: Path, tmp: Path) -> tuple[dict[str, dict[str, float]], str, list[str]]:
    res = _chromium(["--dump-dom", page.as_uri()], tmp)
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r'<pre id="plot-boxes">(.*?)</pre>', res.stdout, re.S)
    assert m, "the page's script did not run (no plot boxes in the DOM)"
    boxes = json.loads(htmlmod.unescape(m.group(1)) or "{}")
    return boxes, res.stdout, _console_errors(res.stderr)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    db = tmp / "runs.db"
    res = agentsim.simulate("chain-arith", ["noisy,p=0.05,seed=1", "noisy,p=0.25,seed=1"], params={"depth": 3},
                            instances=24, seed=4, db=str(db), mode="both")
    from agentsim.render import build_report, write_report

    doc = build_report(res.store, [r.id for r in res.runs], resamples=400)
    out = tmp / "report.html"
    write_report(doc, out)
    return out


def test_report_opens_offline_and_every_plot_renders(report, tmp_path):
    from PIL import Image

    boxes, dom, errors = _open(report, tmp_path)
    assert not errors, errors
    n_svg = report.read_text().count('<svg id="plot-')
    assert n_svg >= 5 and len(boxes) == n_svg, (n_svg, boxes)
    for name, b in boxes.items():
        assert b["width"] > 200 and b["height"] > 120, (name, b)
    assert "accuracy trap" in dom or "accuracy loss" in dom
    height = int(max(b["y"] + b["height"] for b in boxes.values())) + 40
    shot = tmp_path / "shot.png"
    res = _chromium([f"--window-size={WIDTH},{height}", f"--screenshot={shot}", report.as_uri()], tmp_path)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert not _console_errors(res.stderr)
    im = Image.open(shot).convert("L")
    for name, b in boxes.items():
        box = (int(b["x"]), int(b["y"]), int(b["x"] + b["width"]), int(b["y"] + b["height"]))
        crop = im.crop(box)
        hist = crop.histogram()
        non_white = sum(hist[:235])
        share = non_white / (crop.width * crop.height)
        # lines, bands, bars, axes and labels: a drawn plot is far from blank
        assert share > 0.02, f"{name}: only {share:.1%} of its box is drawn"


def test_the_checks_can_fail(tmp_path):
    """A page with a blank 'plot', a script error and a fetch is caught by the same checks."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><svg id="plot-blank" width="400" height="200"></svg>'
        '<img src="http://example.invalid/x.png"><pre id="plot-boxes"></pre><script>'
        'var r = document.getElementById("plot-blank").getBoundingClientRect();'
        'document.getElementById("plot-boxes").textContent = JSON.stringify({"plot-blank": '
        '{x: r.left, y: r.top, width: r.width, height: r.height}}); undefinedFunction();</script></body></html>')
    boxes, _dom, errors = _open(page, tmp_path)
    assert any("undefinedFunction" in e for e in errors), errors
    shot = tmp_path / "bad.png"
    _chromium(["--window-size=800,400", f"--screenshot={shot}", page.as_uri()], tmp_path)
    from PIL import Image

    b = boxes["plot-blank"]
    crop = Image.open(shot).convert("L").crop((int(b["x"]), int(b["y"]), int(b["x"] + b["width"]),
                                                int(b["y"] + b["height"])))
    assert sum(crop.histogram()[:235]) / (crop.width * crop.height) < 0.02
