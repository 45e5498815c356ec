"""Team members ("team member data"): the workspace's memberships, by API key."""
