"""Diff and sync against a node: read the running config, plan, post the whole result.

The node validates and stores the posted config as one revision or not at all, so a sync is
never half applied. ``If-Match`` carries the hash read at the start: a node that supports it
refuses (412) a sync computed from a config that changed in between.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.reconcile.client import AdminClient, Running
from tollway.reconcile.diff import Plan, plan
from tollway.reconcile.files import State


@dataclass
class Outcome:
    plan: Plan
    running: Running
    revision: int | None = None
    applied: bool = False


def compute(client: AdminClient, state: State, *, delete: bool = True) -> Outcome:
    running = client.running()
    return Outcome(plan(running.config, state.config, select_tags=state.select_tags,
                        delete=delete), running)


def apply_plan(client: AdminClient, outcome: Outcome, *, message: str | None) -> Outcome:
    """POST the plan's whole target config; nothing is posted when nothing changed."""
    if not outcome.plan.changed:
        outcome.revision = outcome.running.revision
        return outcome
    client.post_config(outcome.plan.target, message=message, if_match=outcome.running.hash)
    outcome.applied = True
    outcome.revision = client.running().revision
    return outcome
