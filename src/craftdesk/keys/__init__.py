"""Key management for the dashboard: create, list, rename, usage, revoke and rotate."""
