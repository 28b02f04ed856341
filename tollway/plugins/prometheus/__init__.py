"""The prometheus plugin (Kong §3.5, with tollway's `gateway_*` names: DECISIONS.md #2, #3)."""
