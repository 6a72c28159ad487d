"""The lab models' own tokenizer: byte-level, 256 byte tokens, one merge and three control tokens.

Written into the GGUF as a GPT-2-style byte-level BPE vocabulary (llama.cpp's ``gpt2`` tokenizer
model, ``qwen2`` pre-tokenizer) whose only merge joins two spaces (llama.cpp refuses a BPE
vocabulary without merges), so llama.cpp and transformers' GGUF reader both tokenize exactly as
:func:`encode` does for any text without two spaces in a row: one token per byte, token id = byte
value. The lab
format uses only the digits, ``+ - * =`` and ``-`` for a negative answer, one token each.
The chat template passes the user message through unchanged: the prompt the model sees is the
compact hop text itself (system text, if a scenario has any, is dropped).
"""

from __future__ import annotations

__all__ = ["MERGES", "tokens", "token_types", "encode", "decode", "BOS", "EOS", "PAD", "VOCAB_SIZE", "CHAT_TEMPLATE",
           "SPECIAL_TOKENS"]

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
MERGES = ("\u0120 \u0120",)  # "Ġ Ġ": two spaces (byte-level), the one merge
BOS = 257  # <|endoftext|>: also padding; never added to prompts
PAD = 257
EOS = 259  # <|im_end|>: ends every answer
VOCAB_SIZE = 256 + len(MERGES) + len(SPECIAL_TOKENS)

CHAT_TEMPLATE = "{% for message in messages %}{% if message['role'] == 'user' %}{{ message['content'] }}{% endif %}{% endfor %}"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-character map (the byte-level alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def tokens() -> list[str]:
    enc = _bytes_to_unicode()
    return [enc[b] for b in range(256)] + [m.replace(" ", "") for m in MERGES] + list(SPECIAL_TOKENS)


def token_types() -> list[int]:
    return [1] * (256 + len(MERGES)) + [3] * len(SPECIAL_TOKENS)  # NORMAL, CONTROL


def encode(text: str) -> list[int]:
    if "  " in text:
        raise ValueError("the lab tokenizer's encode() does not merge spaces: text with two spaces in a row")
    return list(text.encode("utf-8"))


def decode(ids: list[int]) -> str:
    return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")
