"""Billing periods, plan quotas and exact per-period request counting."""
