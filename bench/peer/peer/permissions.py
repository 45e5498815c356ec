from typing import Any

from django.http import HttpRequest
from rest_framework_api_key.permissions import BaseHasAPIKey

from peer.models import WorkspaceAPIKey


class HasWorkspaceAPIKey(BaseHasAPIKey):
    """``HasAPIKey`` for ``WorkspaceAPIKey`` (``Authorization: Api-Key <key>``), keeping the key
    found on the request, so the view needs no second lookup to know its workspace."""

    model = WorkspaceAPIKey

    def has_permission(self, request: HttpRequest, view: Any) -> bool:
        key = self.get_key(request)
        if not key:
            return False
        try:
            api_key = WorkspaceAPIKey.objects.get_from_key(key)
        except WorkspaceAPIKey.DoesNotExist:
            return False
        if api_key.has_expired:
            return False
        request.api_key = api_key  # type: ignore[attr-defined]
        return True
