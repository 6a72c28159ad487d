"""The shop's data and its questions: instance i asks question(i), whose answer is answer(i)."""

from __future__ import annotations

PRICES = {"A1": 12.5, "B2": 3.0, "C3": 7.25, "D4": 40.0}
STOCK = {"A1": 4, "B2": 17, "C3": 0, "D4": 2}
_ASKS = [("price", "A1", 2), ("stock", "B2", 0), ("price", "C3", 4), ("stock", "D4", 0),
         ("price", "B2", 3), ("stock", "A1", 0), ("price", "D4", 2), ("stock", "C3", 0)]


def question(index: int) -> str:
    kind, sku, qty = _ASKS[index % len(_ASKS)]
    if kind == "price":
        return f"How much do {qty} units of product {sku} cost in total?"
    return f"How many units of product {sku} are in stock?"


def answer(index: int) -> float:
    kind, sku, qty = _ASKS[index % len(_ASKS)]
    return PRICES[sku] * qty if kind == "price" else float(STOCK[sku])
