from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class Project(models.Model):
    """CraftDesk's ``projects`` table, read as it is: the rows the server under test serves."""

    workspace_id = models.IntegerField()
    name = models.CharField(max_length=200)
    description = models.TextField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "projects"


class WorkspaceAPIKey(AbstractAPIKey):
    """An API key of one workspace: djangorestframework-api-key's documented way to tie keys
    to an organisation (a subclass of ``AbstractAPIKey``), with its prefix lookup and SHA-512
    check."""

    workspace_id = models.IntegerField(db_index=True)
