"""Projects and their tasks: the workspace data behind ``/v1/projects``."""
