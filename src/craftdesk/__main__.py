"""``python -m craftdesk``: the same program as the ``craftdesk`` command."""

from craftdesk.cli import main

main()
