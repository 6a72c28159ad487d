"""What can honestly meter a served model: nothing here for a remote server; on loopback the
machine's meters, but not the CPU-time estimate (it counts the client process only)."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")

from agentsim.backends.base import create_backend  # noqa: E402
from agentsim.measure import make_meter  # noqa: E402


@pytest.mark.parametrize("host", ["10.0.0.7", "gpu-box.example"])
def test_remote_server_energy_is_unavailable_with_the_reason(host):
    backend = create_backend(f"openai:m,base_url=http://{host}:8000/v1")
    meter = backend.meter_for(make_meter("estimate"))
    assert meter.describe()["kind"] == "unavailable"
    reading = meter.end(meter.begin())
    assert reading.joules is None and "another machine" in reading.note


def test_loopback_server_refuses_the_client_cpu_estimate():
    backend = create_backend("openai:m,base_url=http://127.0.0.1:8000/v1")
    meter = backend.meter_for(make_meter("estimate"))
    assert meter.describe()["kind"] == "unavailable"
    assert "client process only" in meter.end(meter.begin()).note
    off = make_meter("off")
    assert backend.meter_for(off) is off


def test_local_backends_keep_the_chosen_meter():
    est = make_meter("estimate")
    assert create_backend("noisy,p=0.1").meter_for(est) is est
