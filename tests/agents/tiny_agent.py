"""A two-call agent on the official openai client, as a user writes one: it reads
OPENAI_BASE_URL / OPENAI_API_KEY from the environment like any OpenAI program. Instance 1 crashes
when AGENT_CRASH_ON is 1 (a crashing agent must be a failed instance, never a failed sweep)."""

import os
import sys

import openai

index = int(os.environ.get("AGENTSIM_INSTANCE", "0"))
if os.environ.get("AGENT_CRASH_ON") == str(index):
    print("boom: the agent crashed", file=sys.stderr)
    sys.exit(3)
client = openai.OpenAI(max_retries=0)
model = os.environ.get("OPENAI_MODEL", "agentsim")
msgs = [{"role": "user", "content": f"what is the value of item {index}?"}]
first = client.chat.completions.create(model=model, messages=msgs, max_tokens=4)
msgs += [first.choices[0].message.model_dump(exclude_none=True), {"role": "user", "content": "and the sum?"}]
second = client.chat.completions.create(model=model, messages=msgs, max_tokens=4)
print(f"instance {index}: {second.choices[0].message.content!r}")
