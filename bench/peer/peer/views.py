from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from peer.models import Project


def healthz(request: HttpRequest) -> JsonResponse:
    """The peer's trivial view (no key, no database), like CraftDesk's ``/healthz``."""
    return JsonResponse({"status": "ok"})


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "name", "description", "created_at", "updated_at"]


class DataCursorPagination(BasePagination):
    """CraftDesk's page: ``{"data": [...], "next_cursor": ...}`` by id, ``limit`` ≤ 100."""

    def paginate_queryset(self, queryset: QuerySet[Any], request: Any, view: Any = None) -> Any:
        try:
            limit = int(request.query_params.get("limit", 50))
            cursor = request.query_params.get("cursor")
            after = int(cursor) if cursor is not None else None
        except ValueError:
            raise ValidationError("limit and cursor are numbers") from None
        if not 1 <= limit <= 100:
            raise ValidationError("limit is from 1 to 100")
        if after is not None:
            queryset = queryset.filter(id__gt=after)
        rows = list(queryset.order_by("id")[: limit + 1])
        self.next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
        return rows[:limit]

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"data": data, "next_cursor": self.next_cursor})


class ProjectList(generics.ListAPIView):
    serializer_class = ProjectSerializer
    pagination_class = DataCursorPagination

    def get_queryset(self) -> QuerySet[Project]:
        api_key = self.request.api_key  # type: ignore[attr-defined]  # set by the permission
        return Project.objects.filter(workspace_id=api_key.workspace_id)
