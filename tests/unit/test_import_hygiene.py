"""`import agentsim` (and the CLI's parser, and the backend registry) stays light."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "llama_cpp", "transformers", "textual")


def _loaded(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in %r)))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in out.split()}


def test_import_agentsim_is_light():
    assert _loaded("import agentsim") == set()


def test_cli_parser_and_registry_are_light():
    code = (
        "import agentsim.cli as c; c.build_parser()\n"
        "from agentsim.backends import available_backends, create_backend; available_backends()\n"
        "create_backend('noisy,p=0.1')\n"
        "import agentsim.api, agentsim.engine, agentsim.store, agentsim.analysis\n"
    )
    assert _loaded(code) == set()


def test_backends_and_tui_live_inside_the_namespace():
    import agentsim.backends
    import agentsim.tui

    assert agentsim.backends.__name__ == "agentsim.backends"
    out = subprocess.run([sys.executable, "-c", "import backends"], capture_output=True, text=True, cwd="/")
    assert out.returncode != 0  # no global 'backends' module is installed
    out = subprocess.run([sys.executable, "-c", "import tui"], capture_output=True, text=True, cwd="/")
    assert out.returncode != 0
