"""Workspaces, users and memberships: who belongs where, with which role and plan."""
