"""Fixtures of the serving tests: the app in process and real uvicorn servers."""

from tests.support.photos import photo_project, photo_root  # noqa: F401  (fixtures)
from tests.support.serving import client, serve  # noqa: F401  (fixtures)
from tests.support.tables import table_project, table_root  # noqa: F401  (fixtures)
