"""CraftDesk API server: projects, tasks and members behind scoped, metered API keys."""
