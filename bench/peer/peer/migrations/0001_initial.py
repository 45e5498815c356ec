# Made by ``manage.py makemigrations peer`` (Django 5.2), wrapped to the project's line length.
# ``projects`` is CraftDesk's own table: unmanaged, nothing is created for it.

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Project",
            fields=[
                ("id", models.BigAutoField(
                    auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                )),
                ("workspace_id", models.IntegerField()),
                ("name", models.CharField(max_length=200)),
                ("description", models.TextField()),
                ("created_at", models.DateTimeField()),
                ("updated_at", models.DateTimeField()),
            ],
            options={"db_table": "projects", "managed": False},
        ),
        migrations.CreateModel(
            name="WorkspaceAPIKey",
            fields=[
                ("id", models.CharField(
                    editable=False, max_length=150, primary_key=True, serialize=False,
                    unique=True,
                )),
                ("prefix", models.CharField(editable=False, max_length=8, unique=True)),
                ("hashed_key", models.CharField(editable=False, max_length=150)),
                ("created", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("name", models.CharField(
                    default=None, max_length=50,
                    help_text="A free-form name for the API key. Need not be unique. "
                    "50 characters max.",
                )),
                ("revoked", models.BooleanField(
                    blank=True, default=False,
                    help_text="If the API key is revoked, clients cannot use it anymore. "
                    "(This cannot be undone.)",
                )),
                ("expiry_date", models.DateTimeField(
                    blank=True, null=True, verbose_name="Expires",
                    help_text="Once API key expires, clients cannot use it anymore.",
                )),
                ("workspace_id", models.IntegerField(db_index=True)),
            ],
            options={
                "verbose_name": "API key",
                "verbose_name_plural": "API keys",
                "ordering": ("-created",),
                "abstract": False,
            },
        ),
    ]
