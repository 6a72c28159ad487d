"""Agents as they are: ``agent run`` (the user's unchanged program against ``serve``, once per
instance and rung, judged by the user's check) and ``replay`` (the reference's recorded calls
re-sent to another rung, each answer scored). See docs/agents.md."""

from __future__ import annotations

from .replay import replay
from .run import AgentCheck, AgentJob, AgentResult, parse_check, resume_agent_run, run_agent

__all__ = ["AgentJob", "AgentCheck", "AgentResult", "parse_check", "run_agent", "resume_agent_run", "replay"]
