"""Running Alembic from the code (``craftdesk db upgrade``, ``craftdesk serve``, tests).

The migrations ship inside the package (``craftdesk/migrations``), so an installed wheel
migrates from any folder; ``alembic.ini`` at the top of the checkout is for developers'
``alembic revision`` and points at the same folder.
"""

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
