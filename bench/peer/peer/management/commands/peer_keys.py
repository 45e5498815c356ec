from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from peer.models import WorkspaceAPIKey


class Command(BaseCommand):
    help = "Create API keys of a workspace; prints each key alone on a line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace-id", type=int, required=True)
        parser.add_argument("--count", type=int, default=4)

    def handle(self, *args: Any, **options: Any) -> None:
        for n in range(options["count"]):
            _, key = WorkspaceAPIKey.objects.create_key(
                name=f"bench {n}", workspace_id=options["workspace_id"]
            )
            self.stdout.write(key)
