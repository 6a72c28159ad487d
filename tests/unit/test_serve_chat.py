"""Chat requests, tool calls in the model's own format, canonical forms and answer checks
(agentsim.serve.chat: plain data, no server)."""

from __future__ import annotations

import json

import pytest

from agentsim.serve.chat import (
    RequestError,
    canonical,
    parse_request,
    parse_tool_calls,
    same_answer,
    same_text,
    template_messages,
)


def test_tagged_tool_calls_become_openai_tool_calls() -> None:
    text = ('Let me look.\n<tool_call>\n{"name": "get_price", "arguments": {"sku": "A1"}}\n</tool_call>\n'
            '<tool_call>{"name": "get_stock", "arguments": {}}</tool_call>')
    content, calls = parse_tool_calls(text, call_id="call_x")
    assert content == "Let me look."
    assert [c["id"] for c in calls] == ["call_x_0", "call_x_1"]
    assert calls[0]["function"] == {"name": "get_price", "arguments": '{"sku": "A1"}'}
    assert json.loads(calls[1]["function"]["arguments"]) == {}


def test_untagged_json_counts_only_for_known_tools() -> None:
    # <tool_call> is a special token in Qwen's vocabulary: plain-text decoding drops the tags
    text = '{"name": "get_price", "arguments": {"sku": "A17"}}'
    assert parse_tool_calls(text, tool_names={"get_price"})[1][0]["function"]["name"] == "get_price"
    assert parse_tool_calls(text, tool_names={"other"}) == (text, [])
    assert parse_tool_calls(text) == (text, [])  # without tools, JSON is an answer
    assert parse_tool_calls('{"name": "get_price", "value": 3}', tool_names={"get_price"})[1] == []


def test_broken_tool_json_stays_content() -> None:
    text = "<tool_call>{not json}</tool_call>"
    assert parse_tool_calls(text) == (text, [])


def test_request_validation_names_the_field() -> None:
    with pytest.raises(RequestError) as e:
        parse_request({"messages": [{"role": "wizard", "content": "x"}]})
    assert e.value.param == "messages[0]"
    with pytest.raises(RequestError, match="max_tokens"):
        parse_request({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})
    with pytest.raises(RequestError, match="tool_call_id"):
        parse_request({"messages": [{"role": "tool", "content": "x"}]})
    with pytest.raises(RequestError, match="image"):
        parse_request({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})
    r = parse_request({"model": "m", "messages": [{"role": "developer", "content": [{"type": "text", "text": "a"}]},
                                                   {"role": "user", "content": "b"}],
                       "stop": "\n", "max_completion_tokens": 7, "stream": True,
                       "stream_options": {"include_usage": True}})
    assert r.messages[0] == {"role": "system", "content": "a"} and r.stop == ["\n"] and r.max_tokens == 7
    assert r.stream and r.include_usage


def test_canonical_ignores_ids_and_argument_spacing() -> None:
    a = [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]},
         {"role": "tool", "tool_call_id": "call_1", "content": "2"}]
    b = [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "zz", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}]},
         {"role": "tool", "tool_call_id": "zz", "content": "2 "}]
    assert canonical(a) == canonical(b)
    assert canonical(a) != canonical([*b[:1], {"role": "tool", "tool_call_id": "zz", "content": "3"}])
    assert template_messages(a)[0]["tool_calls"][0]["function"]["arguments"] == {"x": 1}
    assert template_messages(a)[0]["content"] == ""


def test_answer_checks() -> None:
    assert same_text("The answer: 42.", "the answer 42", "normalized")
    assert not same_text("The answer: 42.", "the answer 42", "exact")
    assert same_text("total is 1,250.0", "1250", "numeric") and not same_text("12", "13", "numeric")
    call = {"tool_calls": [{"function": {"name": "f", "arguments": '{"a": [1, 2]}'}}]}
    assert same_answer(call, {"tool_calls": [{"function": {"name": "f", "arguments": '{"a":[1,2]}'}}]})
    assert not same_answer(call, {"tool_calls": [{"function": {"name": "f", "arguments": '{"a": [2, 1]}'}}]})
    assert not same_answer(call, {"content": "f"})
