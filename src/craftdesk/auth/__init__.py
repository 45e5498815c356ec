"""Authentication: the key format and hash, the Bearer dependency, dashboard sessions."""
