"""The web dashboard: Settings → Integrations → API Keys, served at ``/dashboard``.

Plain HTML, CSS and ES modules from ``static/``: no build step, nothing fetched from the
network. The page talks to the key-management routes with the session cookie and the
``X-CSRF-Token`` header, like any other client.
"""
