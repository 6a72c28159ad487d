#!/usr/bin/env bash
# The shop agent (pydantic-ai, three tools) at f16 and q4_0, its calls replayed, compared and
# reported: `make agent-example` (or bash examples/agents/shop/run.sh). Writes agent-example.db
# and agent-example.html in the current folder. About 10 minutes on 2 CPU cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${AGENTSIM:-agentsim}
py=${PYTHON:-python}
n=${N:-4}
db=${DB:-agent-example.db}
rm -f "$db" "$db-wal" "$db-shm"
"$bin" models prepare -p f16 -p q4_0
# runs 1 (f16, the reference) and 2 (q4_0): the agent itself, each instance judged by check.py
"$bin" agent run --db "$db" -n "$n" --name shop -b llama:qwen2.5-coder-0.5b@f16 -b llama:qwen2.5-coder-0.5b@q4_0 \
  --check "py:$here/check.py:judge" -- "$py" "$here/agent.py" || true
# runs 3 and 4: run 1's calls re-sent verbatim to each rung (oracle mode: per-call error, inputs held)
"$bin" agent replay 1 --db "$db" -b llama:qwen2.5-coder-0.5b@f16 -b llama:qwen2.5-coder-0.5b@q4_0 || true
"$bin" compare 1 2 --db "$db"
"$bin" compare 3 4 --db "$db"
"$bin" report 1 2 3 4 --db "$db" -o agent-example.html
echo "browse the calls: agentsim tui --db $db"
