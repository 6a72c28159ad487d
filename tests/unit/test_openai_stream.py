"""The openai backend's stream parser and reply figures, on event lines as servers send them
(no HTTP: the parser is a function of the lines)."""

from __future__ import annotations

import json
import time

import pytest

from agentsim.backends.openai_client import Transient, error_text
from agentsim.backends.openai_stream import figures, read_stream, whole_reply
from agentsim.errors import BackendError


def _lines(*events, done=True):
    out = [": ping", ""]
    for e in events:
        out += ["data: " + json.dumps(e), ""]
    return out + (["data: [DONE]"] if done else [])


def _chunk(content=None, role=None, finish=None):
    delta = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_the_role_chunk_is_no_token_and_an_empty_content_chunk_is_one():
    lines = _lines(_chunk("", role="assistant"), _chunk("4"), _chunk(""), _chunk("2"), _chunk(finish="stop"),
                   {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3}})
    reply = read_stream(lines, t0=time.perf_counter(), timeout_s=10, base_url="http://x")
    assert (reply.text, reply.chunks, reply.finish) == ("42", 3, "stop") and reply.ttft_s is not None
    f = figures(reply, wall_s=1.0)
    assert (f.prompt_tokens, f.completion_tokens, f.tokens_source) == (9, 3, "usage")
    assert f.timing_source.startswith("client: ttft") and f.decode_s == pytest.approx(1.0 - reply.ttft_s)


def test_server_timings_are_the_servers_own_figures():
    lines = _lines(_chunk("7"), {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
                                 "timings": {"prompt_ms": 30.0, "predicted_ms": 12.0, "prompt_n": 5, "cache_n": 2}})
    f = figures(read_stream(lines, t0=time.perf_counter(), timeout_s=10, base_url="http://x"), wall_s=9.0)
    assert (f.prefill_s, f.decode_s, f.prompt_tokens, f.cached_tokens) == (0.03, 0.012, 5, 2)
    assert f.timing_source == "server timings" and f.tokens_source.startswith("stream_chunks")


def test_a_stream_cut_short_is_transient_and_an_error_event_is_not():
    with pytest.raises(Transient, match="cut the request short"):
        read_stream(_lines(_chunk("4")), t0=time.perf_counter(), timeout_s=10, base_url="http://x")
    with pytest.raises(BackendError, match="mid-stream: boom"):
        read_stream(_lines({"error": {"message": "boom"}}), t0=time.perf_counter(), timeout_s=10, base_url="http://x")
    with pytest.raises(Transient, match="ran past timeout_s"):
        read_stream(_lines(_chunk("4")), t0=time.perf_counter() - 5, timeout_s=1, base_url="http://x")


def test_a_whole_reply_and_error_bodies():
    reply = whole_reply({"choices": [{"message": {"content": "yes"}, "finish_reason": "stop"}]})
    assert (reply.text, reply.chunks, reply.finish) == ("yes", None, "stop")
    assert figures(reply, 1.0).tokens_source == "unavailable" and figures(reply, 1.0).timing_source == "unavailable"
    with pytest.raises(BackendError, match="no choices"):
        whole_reply({"nope": 1})
    assert error_text('{"error": {"message": "bad key"}}') == "bad key" and error_text("plain") == "plain"


def _entry(tok: str, lp: float, top: list[tuple[str, float]]) -> dict:
    return {"token": tok, "logprob": lp, "bytes": list(tok.encode()),
            "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in top]}


def test_logprobs_are_read_from_the_stream_and_cut_to_the_text() -> None:
    from agentsim.backends.openai_stream import topk_scores

    entries = [_entry("4", -0.1, [("4", -0.1), ("5", -2.5)]), _entry("2", -0.3, [("2", -0.3)]),
               _entry("\n\n", -0.2, [("\n\n", -0.2)])]
    lines = [f"data: {json.dumps({'choices': [{'delta': {'content': e['token']}, 'logprobs': {'content': [e]}}]})}"
             for e in entries]
    lines += ['data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}', "data: [DONE]"]
    reply = read_stream(lines, t0=time.perf_counter(), timeout_s=10, base_url="http://x")
    assert reply.logprobs == entries
    # the kept text is "42" (a stop sequence "\n\n" cut): its two tokens, each with its top-k
    # and the returned token itself
    tokens, dists = topk_scores(reply.logprobs, "42")
    assert tokens == [b"4", b"2"] and dists == [{b"4": -0.1, b"5": -2.5}, {b"2": -0.3}]
    # a multi-byte character split over two tokens belongs to the text once complete
    split = [{"token": "x", "logprob": -1.0, "bytes": [0xC3]}, {"token": "y", "logprob": -1.0, "bytes": [0xA9]}]
    assert topk_scores(split, "é")[0] == [b"\xc3", b"\xa9"]
    assert topk_scores([], "x") == ([], [])
