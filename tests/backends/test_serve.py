"""``agentsim serve`` against the official ``openai`` client: real llama.cpp on the tiny GGUF the
tests write (fast tier), and the real default model (slow tier). Servers bind loopback only and
are started and stopped here."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")

from agentsim.errors import AgentsimError  # noqa: E402
from agentsim.serve import ServeOptions, Serving  # noqa: E402
from agentsim.store import Store  # noqa: E402

TOOLS = [{"type": "function", "function": {
    "name": "get_price", "description": "Price in dollars of a product by its SKU",
    "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}}}]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "serve.db")
    yield s
    s.close()


@pytest.fixture
def served(tiny_gguf: Path, store: Store):
    with Serving(f"llama:{tiny_gguf},n_threads=1", store=store) as s:
        yield s


def _client(s: Serving) -> "openai.OpenAI":
    return openai.OpenAI(base_url=s.base_url, api_key="sk-secret-never-stored", max_retries=0)


def test_sync_call_is_a_recorded_hop_with_usage(served: Serving, store: Store) -> None:
    r = _client(served).chat.completions.create(
        model="agentsim", messages=[{"role": "system", "content": "you are a helpful assistant."},
                                    {"role": "user", "content": "what is the answer?"}],
        max_tokens=6, seed=3, stop=["\n\n"])
    assert r.object == "chat.completion" and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens == 6 or r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    (hop,) = store.hops(served.run.id)
    assert hop.kind == "llm" and hop.hop_id == "c1" and hop.error_kind == "none"
    req = json.loads(hop.prompt)
    assert req["messages"][1]["content"] == "what is the answer?" and req["max_tokens"] == 6 and req["seed"] == 3
    assert req["stop"] == ["\n\n"]
    assert hop.parsed["message"]["content"] == r.choices[0].message.content
    assert hop.parsed["finish_reason"] == r.choices[0].finish_reason
    # the hop keeps agentsim's own words: the budget is length, anything else a stop of some kind
    assert (hop.stop_reason == "length") == (r.choices[0].finish_reason == "length")
    assert hop.stop_reason in ("eos", "stop", "length")
    assert hop.prompt_tokens == r.usage.prompt_tokens and hop.completion_tokens == r.usage.completion_tokens
    assert hop.prefill_s is not None and hop.decode_s is not None and hop.wall_s > 0
    assert hop.energy_kind == "unavailable"
    # the key the client sent is in no column of any table
    with store.engine.connect() as conn:
        from sqlalchemy import text

        for table in ("run", "instance", "hop"):
            for row in conn.execute(text(f"SELECT * FROM {table}")).all():  # noqa: S608 - fixed names
                assert "sk-secret" not in json.dumps([str(v) for v in row])


def test_continuation_is_a_child_and_streaming_matches(served: Serving, store: Store) -> None:
    c = _client(served)
    msgs = [{"role": "user", "content": "what is the answer?"}]
    first = c.chat.completions.create(model="agentsim", messages=msgs, max_tokens=5)
    msgs += [first.choices[0].message.model_dump(exclude_none=True), {"role": "user", "content": "and the sum?"}]
    stream = c.chat.completions.create(model="agentsim", messages=msgs, max_tokens=5, stream=True,
                                       stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    usage = [ch.usage for ch in chunks if ch.usage]
    finish = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finish and usage and usage[0].completion_tokens >= 1
    again = c.chat.completions.create(model="agentsim", messages=msgs, max_tokens=5)
    assert again.choices[0].message.content == text  # greedy: the stream carried the same answer
    hops = store.hops(served.run.id)
    assert [h.hop_id for h in hops] == ["c1", "c2", "c3"]
    assert hops[1].parents == ["c1"] and hops[1].depth == 2
    assert hops[2].parents == ["c1"]  # the same continuation again: a sibling, not a child of c2


def test_async_client_and_concurrent_requests_keep_records_apart(served: Serving, store: Store) -> None:
    async def main() -> list[str]:
        ac = openai.AsyncOpenAI(base_url=served.base_url, api_key="x", max_retries=0)
        prompts = [f"what is the value of item {k}?" for k in range(4)]
        rs = await asyncio.gather(*[ac.chat.completions.create(
            model="agentsim", messages=[{"role": "user", "content": p}], max_tokens=4) for p in prompts])
        await ac.close()
        return [r.choices[0].message.content for r in rs]

    answers = asyncio.run(main())
    hops = store.hops(served.run.id)
    assert len(hops) == 4
    by_prompt = {json.loads(h.prompt)["messages"][0]["content"]: h for h in hops}
    for k, ans in enumerate(answers):
        assert by_prompt[f"what is the value of item {k}?"].parsed["message"]["content"] == ans
    # each answer is what the prompt gives alone (batched decoding does not mix sequences)
    alone = _client(served).chat.completions.create(
        model="agentsim", messages=[{"role": "user", "content": "what is the value of item 2?"}], max_tokens=4)
    assert alone.choices[0].message.content == answers[2]


def test_tools_are_rendered_with_the_template_and_recorded(served: Serving, store: Store) -> None:
    r = _client(served).chat.completions.create(
        model="agentsim", messages=[{"role": "user", "content": "the price of A1?"}], tools=TOOLS,
        tool_choice="auto", max_tokens=4)
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
    (hop,) = store.hops(served.run.id)
    req = json.loads(hop.prompt)
    assert req["tools"] == TOOLS and req["tool_choice"] == "auto"
    # the tools reach the template: the backend renders them (the tiny ChatML template ignores them;
    # the default model's Qwen template lists them: test_real_default_model_tool_call_round_trip)
    from agentsim.backends.base import GenerationRequest

    seen: list[GenerationRequest] = []
    real = served.backend.render
    served.backend.render = lambda q: (seen.append(q), real(q))[1]  # type: ignore[method-assign]
    try:
        _client(served).chat.completions.create(
            model="agentsim", messages=[{"role": "user", "content": "the price of A1?"}], tools=TOOLS, max_tokens=2)
        _client(served).chat.completions.create(
            model="agentsim", messages=[{"role": "user", "content": "the price of A1?"}], tools=TOOLS,
            tool_choice="none", max_tokens=2)
    finally:
        served.backend.render = real  # type: ignore[method-assign]
    assert seen[0].tools == TOOLS and seen[1].tools is None


def test_unknown_model_and_bad_body_get_openai_errors(served: Serving, store: Store) -> None:
    c = _client(served)
    with pytest.raises(openai.NotFoundError) as e:
        c.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert e.value.body["code"] == "model_not_found" and "gpt-9" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e2:
        c.chat.completions.create(model="agentsim", messages=[], max_tokens=2)
    assert e2.value.body["param"] == "messages"
    hops = store.hops(served.run.id)
    assert len(hops) == 1 and hops[0].error_kind == "backend" and "gpt-9" in hops[0].error_detail


def test_context_too_long_is_an_error_body_and_a_backend_hop(tiny_gguf: Path, store: Store) -> None:
    with Serving(f"llama:{tiny_gguf},n_ctx=64,n_threads=1", store=store) as s:
        with pytest.raises(openai.BadRequestError) as e:
            _client(s).chat.completions.create(
                model="agentsim", messages=[{"role": "user", "content": "the answer is the number " * 20}], max_tokens=8)
        assert e.value.body["code"] == "context_length_exceeded"
        ok = _client(s).chat.completions.create(model="agentsim", messages=[{"role": "user", "content": "hi"}],
                                                max_tokens=2)
        assert ok.choices[0].finish_reason in ("stop", "length")
    hops = store.hops(s.run.id)
    assert [h.error_kind for h in hops] == ["backend", "none"] and "n_ctx" in hops[0].error_detail
    assert store.get_run(s.run.id).status == "complete" and store.integrity_check() == "ok"


def test_client_disconnect_mid_stream_leaves_a_whole_record(served: Serving, store: Store) -> None:
    import httpx

    body = {"model": "agentsim", "messages": [{"role": "user", "content": "what is the answer?"}],
            "max_tokens": 8, "stream": True}
    with httpx.Client() as h, h.stream("POST", served.base_url + "/chat/completions", json=body) as resp:
        for _line in resp.iter_lines():
            break  # gone after the first event
    r = _client(served).chat.completions.create(model="agentsim", messages=[{"role": "user", "content": "hi"}],
                                                max_tokens=2)
    assert r.choices
    hops = store.hops(served.run.id)
    assert len(hops) == 2 and hops[0].completion_tokens == 8 and hops[0].parsed["message"]["content"] is not None


def test_instance_routes_record_instances(served: Serving, store: Store) -> None:
    for k in (0, 2):
        c = openai.OpenAI(base_url=served.instance_url(k), api_key="x", max_retries=0)
        c.chat.completions.create(model="agentsim", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert sorted(h.instance_index for h in store.hops(served.run.id)) == [0, 2]
    assert store.get_run(served.run.id).n_instances == 3


def test_non_loopback_bind_is_refused_unless_asked(tiny_gguf: Path, store: Store) -> None:
    with pytest.raises(AgentsimError, match="allow-remote"):
        Serving(f"llama:{tiny_gguf}", store=store, options=ServeOptions(host="0.0.0.0"))
    assert store.list_runs() == []  # refused before anything was loaded or created


def test_json_response_format_is_constrained(served: Serving, store: Store) -> None:
    r = _client(served).chat.completions.create(
        model="agentsim", messages=[{"role": "user", "content": "the answer as json"}], max_tokens=24,
        response_format={"type": "json_object"})
    text = r.choices[0].message.content
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:
        assert text.lstrip().startswith("{")


def test_cli_serve_refuses_remote_host_with_exit_2(tiny_gguf: Path, tmp_path: Path) -> None:
    from agentsim.cli import main

    assert main(["serve", "-b", f"llama:{tiny_gguf}", "--host", "0.0.0.0", "--db", str(tmp_path / "x.db")]) == 2


def test_threads_share_one_server(served: Serving, store: Store) -> None:
    out: list[str] = []

    def one(k: int) -> None:
        r = _client(served).chat.completions.create(
            model="agentsim", messages=[{"role": "user", "content": f"item {k}"}], max_tokens=3)
        out.append(r.choices[0].message.content or "")

    ts = [threading.Thread(target=one, args=(k,)) for k in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(out) == 3 and len(store.hops(served.run.id)) == 3


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_real_default_model_tool_call_round_trip(store: Store, tmp_path_factory: pytest.TempPathFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The default model (Qwen2.5-coder, its own chat template) asked to use a tool: the call comes
    back as OpenAI tool_calls; the tool's result links to it; the answer continues from both."""
    from tests.real_model import default_model_home

    monkeypatch.setenv("AGENTSIM_HOME", str(default_model_home(tmp_path_factory, ("q4_0",))))
    with Serving("llama:qwen2.5-coder-0.5b@q4_0", store=store) as s:
        c = _client(s)
        msgs = [{"role": "user", "content": "What is the price of SKU A17? Use the tool."}]
        r = c.chat.completions.create(model="agentsim", messages=msgs, tools=TOOLS, max_tokens=64)
        (call,) = r.choices[0].message.tool_calls
        assert r.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "get_price" and json.loads(call.function.arguments) == {"sku": "A17"}
        msgs += [r.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "12.50"}]
        stream = c.chat.completions.create(model="agentsim", messages=msgs, tools=TOOLS, max_tokens=64, stream=True)
        assert list(stream)
        prompt = s.backend.render(s.service.generation_request(
            __import__("agentsim.serve.chat", fromlist=["parse_request"]).parse_request(
                {"model": "agentsim", "messages": msgs[:1], "tools": TOOLS})))
        assert "get_price" in prompt and "<tools>" in prompt  # Qwen's template lists the tools

        async def async_call() -> str:
            ac = openai.AsyncOpenAI(base_url=s.base_url, api_key="x", max_retries=0)
            r = await ac.chat.completions.create(model="agentsim", messages=[
                {"role": "user", "content": "Reply with the word yes."}], max_tokens=4)
            await ac.close()
            return r.choices[0].message.content or ""

        assert asyncio.run(async_call()).strip()
    hops = {h.hop_id: h for h in store.hops(s.run.id)}
    assert set(hops) == {"c1", "c1.t0", "c2", "c3"}
    assert hops["c1.t0"].kind == "tool" and hops["c1.t0"].parents == ["c1"] and hops["c1.t0"].completion == "12.50"
    assert hops["c2"].parents == ["c1", "c1.t0"] and hops["c2"].depth == 3


def test_json_schema_response_format_is_constrained(served: Serving, store: Store) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    r = _client(served).chat.completions.create(
        model="agentsim", messages=[{"role": "user", "content": "the number"}], max_tokens=32,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}})
    text = r.choices[0].message.content
    if r.choices[0].finish_reason == "stop":
        obj = json.loads(text)
        assert set(obj) == {"n"} and isinstance(obj["n"], int)
    else:
        assert text.lstrip().startswith('{"n"') or text.lstrip().startswith("{")
    assert json.loads(store.hops(served.run.id)[0].prompt)["response_format"]["type"] == "json_schema"
