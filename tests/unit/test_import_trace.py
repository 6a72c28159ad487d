"""``agentsim import trace``: OTLP JSON (GenAI and OpenInference attributes) and OpenAI JSONL into a
scenario file that validates; malformed spans named by trace, span and attribute; secrets never
copied. (The trace of a real instrumentation package: tests/agents/test_instrumented_trace.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from agentsim.cli import main
from agentsim.errors import ScenarioError
from agentsim.importers import import_trace
from agentsim.scenario import load_scenario

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _attr(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value if isinstance(value, str) else json.dumps(value)}}


def _otlp(spans: list[dict]) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "shop")]},
                               "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}


def _span(span_id: str, attrs: dict, start: int, parent: str = "") -> dict:
    return {"traceId": TRACE, "spanId": span_id, "parentSpanId": parent, "name": "x",
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 1),
            "attributes": [_attr(k, v) for k, v in attrs.items()]}


def _genai_chat(span_id: str, start: int, inputs: list, outputs: list, **extra: object) -> dict:
    return _span(span_id, {"gen_ai.operation.name": "chat", "gen_ai.request.model": "qwen",
                           "gen_ai.request.max_tokens": 48, "gen_ai.input.messages": inputs,
                           "gen_ai.output.messages": outputs, **extra}, start)


USER = {"role": "user", "parts": [{"type": "text", "content": "price of A1 times 2?"}]}
CALL = {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_9", "name": "get_price",
                                        "arguments": {"sku": "A1"}}]}
RESULT = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_9", "response": "21"}]}
FINAL = {"role": "assistant", "parts": [{"type": "text", "content": "42"}]}


def _genai_file(tmp_path: Path) -> Path:
    spans = [
        _genai_chat("00f067aa0ba902b7", 10, [USER], [CALL],
                    **{"http.request.header.authorization": "Bearer sk-live-SECRET", "openai.api_key": "sk-SECRET2"}),
        _span("00f067aa0ba902b8", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_price",
                                   "gen_ai.tool.call.id": "call_9", "gen_ai.tool.call.arguments": {"sku": "A1"},
                                   "gen_ai.tool.call.result": "21"}, 20),
        _genai_chat("00f067aa0ba902b9", 30, [USER, CALL, RESULT], [FINAL]),
    ]
    p = tmp_path / "genai.json"
    p.write_text(json.dumps(_otlp(spans)))
    return p


def test_genai_trace_becomes_a_dag_with_a_tool_hop(tmp_path: Path) -> None:
    out = import_trace(_genai_file(tmp_path), tmp_path / "s.yaml")
    sc = load_scenario(out)
    assert sc.order == ["c1", "c1_t0", "c2"]
    assert sc.hop("c2").depends_on == ["c1", "c1_t0"] and sc.depth["c2"] == 3
    c2 = sc.hop("c2")
    assert [(m.role, m.from_hop) for m in c2.messages] == [("user", None), ("assistant", "c1"), ("tool", "c1_t0")]
    inst = sc.instance(0, 0)
    assert inst.expected["c1"] == {"name": "get_price", "arguments": {"sku": "A1"}}
    assert inst.expected["c1_t0"] == "21" and inst.expected["c2"] == "42"
    assert sc.hop("c1").max_tokens == 48
    text = out.read_text()
    assert "SECRET" not in text and "Bearer" not in text  # secrets in attributes are never stored
    # the parent's answer is handed on as a tool-call message (what the recorded chat held)
    rendered = [m.render({"c1": inst.expected["c1"], "c1_t0": "21"}) for m in c2.messages]
    assert rendered[1]["tool_calls"][0]["function"] == {"name": "get_price", "arguments": {"sku": "A1"}}
    assert rendered[2] == {"role": "tool", "content": "21", "tool_call_id": "call_9"}


def test_openinference_trace(tmp_path: Path) -> None:
    a = {"openinference.span.kind": "LLM", "llm.model_name": "qwen",
         "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "be brief",
         "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "2+2?",
         "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "4",
         "llm.invocation_parameters": {"max_tokens": 8}}
    b = {"openinference.span.kind": "LLM",
         "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "be brief",
         "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "2+2?",
         "llm.input_messages.2.message.role": "assistant", "llm.input_messages.2.message.content": "4",
         "llm.input_messages.3.message.role": "user", "llm.input_messages.3.message.content": "times 3?",
         "llm.output_messages.0.message.role": "assistant",
         "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "mul",
         "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"a": 4, "b": 3}',
         "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {"name": "mul"}})}
    p = tmp_path / "oi.json"
    p.write_text(json.dumps(_otlp([_span("1111111111111111", a, 1), _span("2222222222222222", b, 2)])))
    sc = load_scenario(import_trace(p, tmp_path / "oi.yaml"))
    assert sc.hop("c2").depends_on == ["c1"] and sc.hop("c1").max_tokens == 8
    assert sc.hop("c2").tools == [{"type": "function", "function": {"name": "mul"}}]
    assert sc.instance(0, 0).expected["c2"] == {"name": "mul", "arguments": {"a": 4, "b": 3}}


def test_openai_jsonl(tmp_path: Path) -> None:
    lines = [
        {"request": {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
         "response": {"choices": [{"message": {"role": "assistant", "content": "hello"}}]}},
        {"request": {"model": "m", "messages": [{"role": "user", "content": "hi"},
                                                {"role": "assistant", "content": "hello"},
                                                {"role": "user", "content": "bye"}]},
         "response": {"choices": [{"message": {"role": "assistant", "content": "ciao"}}],
                      "usage": {"completion_tokens": 3}}},
    ]
    p = tmp_path / "calls.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in lines))
    out = tmp_path / "j.yaml"
    assert main(["import", "trace", str(p), "-o", str(out)]) == 0
    assert main(["validate", str(out)]) == 0
    sc = load_scenario(out)
    assert sc.hop("c2").depends_on == ["c1"] and sc.hop("c2").max_tokens == 22
    assert yaml.safe_load(out.read_text())["world"] == {"ref_c1": "hello", "ref_c2": "ciao"}


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda s: s["attributes"].__setitem__(3, _attr("gen_ai.input.messages", "{not json")), "gen_ai.input.messages"),
    (lambda s: s["attributes"].__setitem__(4, _attr("gen_ai.output.messages", [{"role": "robot"}])),
     "gen_ai.output.messages"),
    (lambda s: s["attributes"].__setitem__(3, _attr("gen_ai.input.messages", [{"role": "user", "parts": [
        {"type": "image", "content": "x"}]}])), "gen_ai.input.messages"),
])
def test_malformed_span_names_trace_span_and_attribute(tmp_path: Path, mutate, needle: str) -> None:
    span = _genai_chat("00f067aa0ba902b7", 1, [USER], [FINAL])
    mutate(span)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(_otlp([span])))
    with pytest.raises(ScenarioError) as e:
        import_trace(p, tmp_path / "bad.yaml")
    msg = str(e.value)
    assert TRACE in msg and "00f067aa0ba902b7" in msg and needle in msg
    assert not (tmp_path / "bad.yaml").exists()
    assert main(["import", "trace", str(p), "-o", str(tmp_path / "bad.yaml")]) == 2


def test_missing_content_and_bad_files_are_clear(tmp_path: Path) -> None:
    span = _span("00f067aa0ba902b7", {"gen_ai.operation.name": "chat"}, 1)
    p = tmp_path / "nocontent.json"
    p.write_text(json.dumps(_otlp([span])))
    with pytest.raises(ScenarioError, match="CAPTURE_MESSAGE_CONTENT"):
        import_trace(p, tmp_path / "x.yaml")
    q = tmp_path / "junk.jsonl"
    q.write_text('{"request": {"messages": []}, "response": {}}\n')
    with pytest.raises(ScenarioError, match="line 1.*request.messages"):
        import_trace(q, tmp_path / "x.yaml")
    assert main(["import", "trace", str(tmp_path / "missing.json"), "-o", str(tmp_path / "x.yaml")]) == 2
