"""Entry for Tortoise's own CLI.

``tortoise -c cetgql.tortoise_conf.TORTOISE_ORM makemigrations`` writes a new migration.
"""

from cetgql.db import tortoise_config
from cetgql.settings import get_settings

TORTOISE_ORM = tortoise_config(get_settings().database_url)
