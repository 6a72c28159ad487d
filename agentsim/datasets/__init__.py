"""Externally written data sets bundled with agentsim as package data (nothing is downloaded).

Each data set sits in a folder of its own beside its licence and a ``SOURCE.md`` naming the
repository, path, commit and sha256 it was taken from; its loader verifies that hash.

``gsm8k``  the GSM8K test split in its Socratic form (OpenAI, MIT licence), see
           :mod:`agentsim.datasets.gsm8k`; its scenario family is
           :mod:`agentsim.scenario.families.gsm8k`.
"""

from __future__ import annotations

from agentsim.errors import AgentsimError

__all__ = ["DatasetError"]


class DatasetError(AgentsimError):
    """A bundled data set is missing, altered or unreadable (reinstall agentsim)."""
