"""A trace made by a real instrumentation package (``opentelemetry-instrumentation-openai-v2`` with
``opentelemetry-sdk``) around the official openai client talking to ``agentsim serve``, written by
OpenTelemetry's own OTLP encoder (protobuf's JSON mapping), imported, validated and replayed at
two precisions: at the recording rung every call comes back as recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
openai = pytest.importorskip("openai")
pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.instrumentation.openai_v2")
pytest.importorskip("opentelemetry.exporter.otlp.proto.common")

from agentsim.importers import import_trace  # noqa: E402
from agentsim.launch import execute  # noqa: E402
from agentsim.scenario import load_scenario  # noqa: E402
from agentsim.serve import Serving  # noqa: E402
from agentsim.store import Store  # noqa: E402
from tests.tiny_models import write_tiny_gguf  # noqa: E402


def _record_trace(spec: str, store: Store, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.protobuf.json_format import MessageToJson
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    inst = OpenAIInstrumentor()
    inst.instrument(tracer_provider=provider)
    try:
        with Serving(spec, store=store) as s:
            c = openai.OpenAI(base_url=s.base_url, api_key="sk-live-NEVER-STORED", max_retries=0)
            msgs = [{"role": "system", "content": "you are a helpful assistant."},
                    {"role": "user", "content": "what is the value of the sum?"}]
            first = c.chat.completions.create(model="agentsim", messages=msgs, max_tokens=6)
            msgs += [{"role": "assistant", "content": first.choices[0].message.content},
                     {"role": "user", "content": "and the answer is?"}]
            c.chat.completions.create(model="agentsim", messages=msgs, max_tokens=6)
            # a tool round trip as an agent framework sends it
            msgs2 = [{"role": "user", "content": "the city is in the country?"},
                     {"role": "assistant", "content": None, "tool_calls": [
                         {"id": "call_7", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "city"}'}}]},
                     {"role": "tool", "tool_call_id": "call_7", "content": "three apples"}]
            c.chat.completions.create(model="agentsim", messages=msgs2, max_tokens=6)
    finally:
        inst.uninstrument()
    spans = exporter.get_finished_spans()
    assert sum(1 for sp in spans if sp.attributes.get("gen_ai.operation.name") == "chat") == 3
    out.write_text(MessageToJson(encode_spans(spans)))


def test_instrumented_trace_imports_and_replays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f32").mkdir()
    (tmp_path / "f16").mkdir()
    f32 = write_tiny_gguf(tmp_path / "f32" / "tiny.gguf", seed=0, dtype="f32")
    f16 = write_tiny_gguf(tmp_path / "f16" / "tiny.gguf", seed=0, dtype="f16")
    store = Store(tmp_path / "t.db")
    trace = tmp_path / "trace.otlp.json"
    _record_trace(f"llama:{f32},n_threads=1", store, trace, monkeypatch)
    assert "NEVER-STORED" not in trace.read_text()  # the instrumentation itself records no key

    scenario = tmp_path / "trace.yaml"
    import_trace(trace, scenario)
    sc = load_scenario(scenario)
    assert [sc.hop(h).kind for h in sc.order] == ["llm", "llm", "llm"]
    assert sc.hop("c2").depends_on == ["c1"]  # the continuation, found from the recorded messages
    assert [m.from_hop for m in sc.hop("c2").messages] == [None, None, "c1", None]
    assert sc.hop("c3").messages[1].tool_calls == [{"name": "lookup", "arguments": {"q": "city"}}]
    assert sc.hop("c1").max_tokens == 6

    runs, failures = execute([scenario], [f"llama:{f32},n_threads=1", f"llama:{f16},n_threads=1"], store=store,
                             instances=1, modes="oracle")
    assert not failures
    same = next(r for r in runs if r.precision == "f32")
    hops = store.hops(same.id)
    # replayed verbatim at the rung that recorded it: every call answers as recorded
    assert [h.correct for h in hops] == [True, True, True], [(h.completion, h.expected) for h in hops]
    assert json.loads(hops[1].prompt)["messages"][2]["role"] == "assistant"
    other = next(r for r in runs if r.precision == "f16")
    assert len(store.hops(other.id)) == 3 and other.status == "complete"
    free, _ = execute([scenario], [f"llama:{f16},n_threads=1"], store=store, instances=1, modes="free")
    assert free[0].status == "complete"
    store.close()
