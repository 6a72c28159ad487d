"""A small shop assistant written with pydantic-ai, as its users write agents: three tools
(a price list, a stock count, a multiplication) and one question per instance. It knows nothing
of agentsim: it reads OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL like any OpenAI program, and
AGENTSIM_INSTANCE picks its question (so the same instance asks the same question at every rung).

    agentsim agent run -b llama:qwen2.5-coder-0.5b@f16 -b llama:qwen2.5-coder-0.5b@q4_0 -n 6 \\
        --check py:examples/agents/shop/check.py:judge -- python examples/agents/shop/agent.py
"""

from __future__ import annotations

import os
import re

from pydantic_ai import Agent
from pydantic_ai.usage import UsageLimits
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from catalog import PRICES, STOCK, question  # beside this file

model = OpenAIChatModel(os.environ.get("OPENAI_MODEL", "agentsim"),
                        provider=OpenAIProvider(base_url=os.environ["OPENAI_BASE_URL"],
                                                api_key=os.environ.get("OPENAI_API_KEY", "none")))
agent = Agent(model, instructions="You are a shop assistant. Call the tools you need, once each, then "
                                  "answer with the number only.",
              model_settings={"temperature": 0.0, "max_tokens": 96, "seed": 0}, retries=1)


def _sku(text: str) -> str:
    found = re.findall(r"[A-Za-z]\d", text)
    return found[-1].upper() if found else text.strip().upper()


@agent.tool_plain
def get_price(sku: str) -> float | str:
    """The price in dollars of one unit of the product with this SKU."""
    return PRICES.get(_sku(sku), f"no product {sku!r}; SKUs look like A1")


@agent.tool_plain
def get_stock(sku: str) -> int | str:
    """How many units of the product with this SKU are in stock."""
    return STOCK.get(_sku(sku), f"no product {sku!r}; SKUs look like A1")


@agent.tool_plain
def multiply(a: float, b: float) -> float:
    """a times b."""
    return round(a * b, 2)


if __name__ == "__main__":
    index = int(os.environ.get("AGENTSIM_INSTANCE", "0"))
    # at most four model calls: a model that keeps calling tools fails its instance, in bounded time
    result = agent.run_sync(question(index), usage_limits=UsageLimits(request_limit=4))
    print(result.output)
