"""The ``openai`` backend against real servers on loopback.

* llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``) on the tiny
  self-written GGUF: answers equal the ``llama`` backend's on the same file (greedy, grammar-held
  hops), a server killed mid-run turns hops into ``backend`` errors and ``--resume`` finishes the
  run after a restart.
* a stdlib ``http.server`` scripted to misbehave (HTTP 500, malformed JSON, a stall, 4xx) or to
  send llama.cpp-style ``timings``: each failure is a clear BackendError after bounded retries,
  and the API key never reaches the database or the output.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentsim.backends.base import GenerationRequest, available_backends, create_backend
from agentsim.errors import BackendError
from tests.backends.openai_servers import LlamaServer, ScriptedHTTPServer, free_port, sse_reply

pytest.importorskip("httpx")

_SERVER_DEPS = all(importlib.util.find_spec(m) for m in ("llama_cpp", "fastapi", "uvicorn", "sse_starlette",
                                                           "starlette_context", "pydantic_settings"))
needs_llama_server = pytest.mark.skipif(not _SERVER_DEPS, reason="llama-cpp-python[server] is not installed "
                                                                 "(pip install 'agentsim[llama,openai]')")
SSE = {"Content-Type": "text/event-stream"}
KEY = "sk-agentsim-test-5f3c9e1d7a"


def _spec(url: str, **opts: Any) -> str:
    extra = "".join(f",{k}={v}" for k, v in opts.items())
    return f"openai:m,base_url={url}{extra}"


def _ok(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    return 200, SSE, sse_reply(["4", "2"], usage={"prompt_tokens": 11, "completion_tokens": 2})


# ------------------------------------------------------------------------------------------
# the real server: llama-cpp-python's


@pytest.fixture(scope="module")
def llama_server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    if not _SERVER_DEPS:
        pytest.skip("llama-cpp-python[server] is not installed")
    server = LlamaServer(tiny_gguf, tmp_path_factory.mktemp("llama_server") / "server.log").start()
    yield server
    server.kill()


def _hops(store: Any, run_id: int) -> dict[tuple[int, str], Any]:
    return {(h.instance_index, h.hop_id): h for h in store.hops(run_id)}


@needs_llama_server
@pytest.mark.llama
def test_answers_equal_the_llama_backends(llama_server: LlamaServer, tiny_gguf: Path, tmp_path: Path) -> None:
    import agentsim

    db = str(tmp_path / "runs.db")
    direct = agentsim.simulate(["chain-linear"], [f"llama:{tiny_gguf},n_threads=1"], instances=3, seed=2,
                               db=db, energy="off")
    served = agentsim.simulate(["chain-linear"], [f"openai:,base_url={llama_server.base_url},precision=f32"],
                               instances=3, seed=2, db=db, energy="off")
    a, b = _hops(direct.store, direct.runs[0].id), _hops(served.store, served.runs[0].id)
    assert len(a) == len(b) == 9
    for key, h in a.items():
        o = b[key]
        assert (o.completion, o.parsed, o.error_kind, o.correct) == (h.completion, h.parsed, h.error_kind, h.correct), key
        assert o.completion and o.completion.lstrip("-").isdigit()  # the integer grammar reached the server
        assert o.ttft_s is not None and o.prefill_s is not None and o.decode_s is not None
        assert o.completion_tokens == h.completion_tokens
    run = served.runs[0]
    assert run.precision == "f32" and run.precision_mode == "declared"
    assert run.backend_info["server"] == "llama-cpp-python" and run.backend_info["grammar_mode"] == "gbnf"
    assert any("cannot verify" in n for n in run.backend_info["notes"])
    assert run.backend_info["server_local"] is True


@needs_llama_server
@pytest.mark.llama
def test_batch_of_real_requests_in_order(llama_server: LlamaServer, tiny_gguf: Path) -> None:
    b = create_backend(f"openai:,base_url={llama_server.base_url},concurrency=3")
    reqs = [GenerationRequest(prompt=f"what is the value of the sum {i}?", max_tokens=6, grammar="integer", seed=i)
            for i in range(5)]
    with b:
        batch = b.generate_batch(reqs)
        one_by_one = [b.generate(r) for r in reqs]
    assert [c.text for c in batch] == [c.text for c in one_by_one]
    assert all(c.text.lstrip("-").isdigit() for c in batch)


@needs_llama_server
@pytest.mark.llama
def test_server_killed_mid_run_then_resume(tiny_gguf: Path, tmp_path: Path) -> None:
    import agentsim
    from agentsim.store import Store

    server = LlamaServer(tiny_gguf, tmp_path / "server.log").start()
    db = tmp_path / "kill.db"
    spec = f"openai:,base_url={server.base_url},retries=1,backoff_s=0.05,timeout_s=10"

    def kill_after_four(p: Any) -> None:
        if p.hops_done == 4 and server.proc is not None:
            server.kill()

    try:
        res = agentsim.simulate(["chain-linear"], [spec], instances=6, seed=3, db=str(db), energy="off",
                                progress=kill_after_four, raise_on_failure=False)
        assert res.failures and "in a row" in str(res.failures[0][1])
        store = Store(db)
        run = store.list_runs()[0]
        assert run.status == "failed"
        hops = store.hops(run.id)
        dead = [h for h in hops if h.error_kind == "backend"]
        assert len(hops) == 9 and len(dead) == 5
        assert all("cannot connect" in (h.error_detail or "") and "after 2 attempts" in h.error_detail for h in dead)
        assert all("Traceback" not in (h.error_detail or "") for h in dead)
        store.close()

        server.start()
        out = subprocess.run([sys.executable, "-m", "agentsim.cli", "run", "--resume", str(run.id), "--db", str(db),
                              "--energy", "off"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        store = Store(db)
        assert store.get_run(run.id).status == "complete"
        hops = store.hops(run.id)
        assert len(hops) == 18 and len({(h.instance_index, h.hop_id) for h in hops}) == 18
        assert sum(h.error_kind == "backend" for h in hops) == 5  # the recorded failures stay recorded
        assert all(i.finished for i in store.instances(run.id))
        store.close()
    finally:
        server.kill()


# ------------------------------------------------------------------------------------------
# failures from a scripted server: each a clear BackendError, retried only when transient


def test_connection_refused_is_retried_then_a_clear_error() -> None:
    port = free_port()  # nothing listens there
    b = create_backend(_spec(f"http://127.0.0.1:{port}/v1", retries=2, backoff_s=0.01))
    t0 = time.perf_counter()
    with pytest.raises(BackendError, match=r"cannot connect to http://127\.0\.0\.1:\d+/v1.*after 3 attempts"):
        b.load()
    assert time.perf_counter() - t0 < 5


def test_http_500_is_retried_with_backoff() -> None:
    def boom(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return 500, {"Content-Type": "application/json"}, b'{"error": {"message": "CUDA out of memory"}}'

    with ScriptedHTTPServer(boom) as srv:
        b = create_backend(_spec(srv.base_url, retries=2, backoff_s=0.05))
        with b:
            t0 = time.perf_counter()
            with pytest.raises(BackendError, match=r"HTTP 500 .*CUDA out of memory \(after 3 attempts\)"):
                b.generate(GenerationRequest(prompt="q"))
            assert time.perf_counter() - t0 >= 0.05 + 0.1  # backoff 0.05 then 0.1
        assert len(srv.requests) == 3


def test_malformed_json_is_not_retried() -> None:
    def garbage(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return 200, SSE, b'data: {"choices": [{"delta": {"content": "4"\n\n'

    with ScriptedHTTPServer(garbage) as srv:
        with create_backend(_spec(srv.base_url, retries=3)) as b:
            with pytest.raises(BackendError, match="not valid JSON"):
                b.generate(GenerationRequest(prompt="q"))
        assert len(srv.requests) == 1


def test_a_stall_times_out_after_bounded_attempts() -> None:
    def stall(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.0)
        return _ok(body, headers)

    with ScriptedHTTPServer(stall) as srv:
        with create_backend(_spec(srv.base_url, timeout_s=0.3, retries=1, backoff_s=0.01)) as b:
            t0 = time.perf_counter()
            with pytest.raises(BackendError, match=r"within timeout_s=0\.3.*after 2 attempts"):
                b.generate(GenerationRequest(prompt="q"))
            assert time.perf_counter() - t0 < 2.0
        assert len(srv.requests) == 2


def test_a_stream_cut_short_is_an_error_not_an_empty_answer() -> None:
    def cut(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        chunk = {"choices": [{"index": 0, "delta": {"content": "4"}, "finish_reason": None}]}
        return 200, SSE, b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"

    with ScriptedHTTPServer(cut) as srv:
        with create_backend(_spec(srv.base_url, retries=1, backoff_s=0.01)) as b:
            with pytest.raises(BackendError, match=r"ended before a finish_reason after 1 chunk.*after 2 attempts"):
                b.generate(GenerationRequest(prompt="q"))


def test_client_errors_are_not_retried_and_say_why() -> None:
    def bad(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return 400, {"Content-Type": "application/json"}, b'{"error": {"message": "max_tokens is too large"}}'

    with ScriptedHTTPServer(bad) as srv:
        with create_backend(_spec(srv.base_url, retries=3)) as b:
            with pytest.raises(BackendError, match="HTTP 400 .*max_tokens is too large") as err:
                b.generate(GenerationRequest(prompt="q"))
            assert "attempt" not in str(err.value)
        assert len(srv.requests) == 1


def test_hop_errors_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    import agentsim

    calls = {"n": 0}

    def flaky(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        calls["n"] += 1
        if calls["n"] == 2:
            return 404, {"Content-Type": "application/json"}, b'{"detail": "no such route"}'
        return _ok(body, headers)

    with ScriptedHTTPServer(flaky) as srv:
        res = agentsim.simulate(["chain-linear"], [_spec(srv.base_url, retries=0)], instances=2, seed=0,
                                db=str(tmp_path / "r.db"), energy="off")
    hops = res.to_pandas().hops
    assert len(hops) == 6 and res.runs[0].status == "complete"
    failed = hops[hops["error_kind"] == "backend"]
    assert len(failed) == 1 and "HTTP 404" in failed["error_detail"].iloc[0]


def test_cli_prints_a_clear_error_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agentsim.cli import main

    port = free_port()
    code = main(["run", "chain-linear", "-n", "1", "--energy", "off",
                 "-b", _spec(f"http://127.0.0.1:{port}/v1", retries=1, backoff_s=0.01), "--db", str(tmp_path / "r.db")])
    printed = capsys.readouterr()
    assert code != 0
    assert "cannot connect" in printed.err and "Traceback" not in printed.err + printed.out


# ------------------------------------------------------------------------------------------
# what a hop records


def test_server_timings_and_usage_are_used_and_labelled() -> None:
    timings = {"prompt_n": 30, "prompt_ms": 120.0, "predicted_n": 2, "predicted_ms": 40.0, "cache_n": 12}

    def llamacpp(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return 200, SSE, sse_reply(["4", "2"], usage={"prompt_tokens": 42, "completion_tokens": 2}, timings=timings)

    with ScriptedHTTPServer(llamacpp, owned_by="llamacpp") as srv:
        with create_backend(_spec(srv.base_url)) as b:
            c = b.generate(GenerationRequest(prompt="q", system="s", max_tokens=9, stop=["\n"], grammar="integer", seed=5))
            assert b.info().extra["server"] == "llama.cpp" and b.grammar_mode == "gbnf"
        body = srv.requests[0]
    assert c.text == "42" and c.finish_reason == "stop"  # OpenAI's "stop" with a stop sequence asked
    assert (c.prompt_tokens, c.completion_tokens, c.cached_tokens) == (42, 2, 12)
    assert (c.prefill_s, c.decode_s) == (0.12, 0.04)
    assert c.timing_source == "server timings" and c.tokens_source == "usage"
    assert body["messages"] == [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    assert (body["max_tokens"], body["stop"], body["temperature"], body["seed"], body["stream"]) == (9, ["\n"], 0.0, 5, True)
    assert body["stream_options"] == {"include_usage": True}
    assert body["grammar"] == 'root ::= "-"? [0-9]+' and body["repeat_penalty"] == 1.0


def test_without_timings_the_stream_splits_prefill_and_decode() -> None:
    def plain(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return 200, SSE, sse_reply(["1", "2", "3"])  # no usage, no timings

    with ScriptedHTTPServer(plain) as srv:
        with create_backend(_spec(srv.base_url)) as b:
            c = b.generate(GenerationRequest(prompt="q", grammar="integer"))
            notes = b.info().extra["notes"]
        assert "grammar" not in srv.requests[0] and "response_format" not in srv.requests[0]
    assert c.text == "123" and c.completion_tokens == 3 and c.prompt_tokens is None
    assert c.tokens_source.startswith("stream_chunks")
    assert c.timing_source.startswith("client: ttft")
    assert c.prefill_s == c.ttft_s and c.decode_s is not None and c.decode_s >= 0
    assert c.extra["grammar"].startswith("not applied")
    assert sum("NOT applied" in n for n in notes) == 1  # said once per run


def test_json_schema_mode_sends_structured_outputs() -> None:
    def structured(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return 200, SSE, sse_reply(['"y', 'es"'])

    with ScriptedHTTPServer(structured) as srv:
        with create_backend(_spec(srv.base_url, grammar="json_schema")) as b:
            c = b.generate(GenerationRequest(prompt="q", grammar="yesno"))
            raw = b.generate(GenerationRequest(prompt="q", grammar='root ::= "a" | "b"'))
            notes = b.info().extra["notes"]
        fmt = srv.requests[0]["response_format"]
        assert "response_format" not in srv.requests[1]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == {"type": "string", "enum": ["yes", "no"]}
    assert c.text == "yes" and c.extra["raw_text"] == '"yes"'
    assert raw.extra["grammar"].startswith("not applied (raw GBNF")
    assert any("raw GBNF" in n for n in notes)


def test_a_server_that_refuses_stream_options_still_works() -> None:
    def old(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if "stream_options" in body:
            return 400, {"Content-Type": "application/json"}, b'{"error": {"message": "Unrecognized request argument supplied: stream_options"}}'
        return _ok(body, headers)

    with ScriptedHTTPServer(old) as srv:
        with create_backend(_spec(srv.base_url)) as b:
            assert b.generate(GenerationRequest(prompt="q")).text == "42"
            assert b.generate(GenerationRequest(prompt="q")).text == "42"
        assert [("stream_options" in r) for r in srv.requests] == [True, False, False]


def test_generate_batch_keeps_n_in_flight_and_order() -> None:
    def slow(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        time.sleep(0.25)
        n = body["messages"][-1]["content"]
        if n == "3":
            return 400, {"Content-Type": "application/json"}, b'{"error": {"message": "bad hop"}}'
        return 200, SSE, sse_reply([n])

    with ScriptedHTTPServer(slow) as srv:
        with create_backend(_spec(srv.base_url, concurrency=3)) as b:
            t0 = time.perf_counter()
            out = b.generate_batch([GenerationRequest(prompt=str(i)) for i in range(6)], return_exceptions=True)
            took = time.perf_counter() - t0
            with pytest.raises(BackendError, match="bad hop"):
                b.generate_batch([GenerationRequest(prompt="3")])
        assert srv.max_in_flight == 3
    assert [c.text for i, c in enumerate(out) if i != 3] == ["0", "1", "2", "4", "5"]
    assert isinstance(out[3], BackendError)
    assert all(c.batch_timing == "own" for i, c in enumerate(out) if i != 3)
    assert took < 1.2  # 6 requests of 0.25 s, 3 at a time: two rounds, not six


# ------------------------------------------------------------------------------------------
# the API key


def test_api_key_is_sent_but_never_stored_or_printed(tmp_path: Path) -> None:
    seen: list[str] = []

    def authed(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        seen.append(auth)
        if auth != f"Bearer {KEY}":
            return 401, {"Content-Type": "application/json"}, b'{"error": {"message": "bad key"}}'
        if len(seen) == 2:  # one hop: an error whose message echoes the key
            return 400, {"Content-Type": "application/json"}, json.dumps({"error": {"message": f"key {KEY} may not do that"}}).encode()
        return _ok(body, headers)

    db = tmp_path / "k.db"
    import os

    env = {**os.environ, "AGENTSIM_TEST_KEY": KEY}
    with ScriptedHTTPServer(authed) as srv:
        out = subprocess.run([sys.executable, "-m", "agentsim.cli", "run", "chain-linear", "-n", "2", "--energy", "off",
                              "-b", _spec(srv.base_url, api_key_env="AGENTSIM_TEST_KEY"), "--db", str(db)],
                             capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, out.stderr
        assert seen and all(s == f"Bearer {KEY}" for s in seen)
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(db) + suffix)
            if p.exists():
                assert KEY.encode() not in p.read_bytes()
        assert KEY not in out.stdout + out.stderr
        show = subprocess.run([sys.executable, "-m", "agentsim.cli", "show", "1", "--db", str(db)],
                              capture_output=True, text=True, timeout=120)
        assert KEY not in show.stdout + show.stderr

        # a missing variable is a clear error at load; a wrong key names the fix
        with pytest.raises(BackendError, match="AGENTSIM_NO_SUCH_KEY .*not set"):
            create_backend(_spec(srv.base_url, api_key_env="AGENTSIM_NO_SUCH_KEY")).load()
        os.environ["AGENTSIM_WRONG_KEY"] = "sk-wrong"
        try:
            with create_backend(_spec(srv.base_url, api_key_env="AGENTSIM_WRONG_KEY")) as b:
                with pytest.raises(BackendError, match="HTTP 401") as err:
                    b.generate(GenerationRequest(prompt="q"))
                assert "api_key_env" in str(err.value)
                assert "sk-wrong" not in json.dumps(b.info().extra) and "sk-wrong" not in str(b.spec)
        finally:
            del os.environ["AGENTSIM_WRONG_KEY"]


def test_key_is_scrubbed_from_error_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSIM_TEST_KEY", KEY)

    def echo(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return 403, {"Content-Type": "application/json"}, json.dumps({"error": {"message": f"key {KEY} is revoked"}}).encode()

    with ScriptedHTTPServer(echo) as srv:
        with create_backend(_spec(srv.base_url, api_key_env="AGENTSIM_TEST_KEY")) as b:
            with pytest.raises(BackendError) as err:
                b.generate(GenerationRequest(prompt="q"))
    assert KEY not in str(err.value) and "key *** is revoked" in str(err.value)


# ------------------------------------------------------------------------------------------
# spec and info


def test_registered_and_spec_checked() -> None:
    assert "openai" in available_backends()
    with pytest.raises(BackendError, match="base_url is required"):
        create_backend("openai:m")
    with pytest.raises(BackendError, match="not an http"):
        create_backend("openai:m,base_url=ftp://x/v1")
    with pytest.raises(BackendError, match="grammar="):
        create_backend("openai:m,base_url=http://127.0.0.1:1/v1,grammar=regex")
    with pytest.raises(BackendError, match="precision given twice"):
        create_backend("openai:m@fp8,base_url=http://127.0.0.1:1/v1,precision=int4")
    with pytest.raises(BackendError, match="concurrency"):
        create_backend("openai:m,base_url=http://127.0.0.1:1/v1,concurrency=0")
    with pytest.raises(BackendError, match="no option.*api_key"):
        create_backend(f"openai:m,base_url=http://127.0.0.1:1/v1,api_key={KEY}")
    with pytest.raises(BackendError, match="not an environment variable name"):
        create_backend(f"openai:m,base_url=http://127.0.0.1:1/v1,api_key_env={KEY}-x")
    with pytest.raises(BackendError, match="credentials"):
        create_backend("openai:m,base_url=http://user:pw@127.0.0.1:1/v1")


def test_info_declares_precision_and_energy_scope() -> None:
    with ScriptedHTTPServer(_ok, model="Qwen/Qwen2.5-7B-Instruct-FP8", owned_by="vllm") as srv:
        with create_backend(f"openai:Qwen/Qwen2.5-7B-Instruct-FP8@fp8,base_url={srv.base_url}") as b:
            info = b.info()
        with pytest.raises(BackendError, match="has no model 'other'"):
            create_backend(f"openai:other,base_url={srv.base_url}").load()
    assert (info.precision, info.precision_mode, info.model) == ("fp8", "declared", "Qwen/Qwen2.5-7B-Instruct-FP8")
    assert info.extra["server"] == "vllm" and info.extra["grammar_mode"] == "json_schema"
    assert info.extra["server_local"] is True and "NVML" in " ".join(info.extra["notes"])
    remote = create_backend("openai:m,base_url=http://192.0.2.7:8000/v1")  # TEST-NET-1: never contacted
    assert remote.info().extra["server_local"] is False
    assert "another machine" in remote.energy_note() and remote.info().precision_mode == "declared"


def test_notes_and_sources_gathered_during_a_run_are_stored_and_shown(tmp_path: Path, capsys) -> None:
    """The server refuses stream_options at the first hop (a note the backend learns mid-run,
    after the run row was made), and answers every other hop with llama.cpp timings: the run
    keeps the note, each hop its own timing and token sources, and ``show`` prints both."""
    import agentsim
    from agentsim.cli import main

    def mixed(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if "stream_options" in body:
            return 400, {"Content-Type": "application/json"}, b'{"error": {"message": "no stream_options"}}'
        content = body["messages"][-1]["content"]
        timed = len(content) % 2 == 0
        return 200, SSE, sse_reply(["4", "2"], timings={"prompt_ms": 3.0, "predicted_ms": 4.0} if timed else None)

    db = str(tmp_path / "runs.db")
    with ScriptedHTTPServer(mixed) as srv:
        res = agentsim.simulate(["chain-linear"], [_spec(srv.base_url)], instances=3, seed=1, db=db, energy="off")
    run = res.store.get_run(res.runs[0].id)
    assert any("refused stream_options" in n for n in run.backend_info["notes"])
    assert any("cannot verify" in n for n in run.backend_info["notes"])  # the notes from the start are kept
    hops = res.store.hops(run.id)
    assert {h.tokens_source for h in hops} == {"stream_chunks (no usage from the server; one chunk per token assumed)"}
    sources = {h.timing_source for h in hops}
    assert "server timings" in sources and any(s.startswith("client: ttft") for s in sources)
    capsys.readouterr()
    assert main(["show", str(run.id), "--db", db]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "backend note" in out and "refused stream_options" in out
    assert "timing source" in out and "server timings (" in out and "tokens source" in out
