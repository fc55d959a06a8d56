"""Fixtures of the pipeline tests: a photo folder's project (tests.support.photos)."""

from tests.support.photos import photo_project, photo_root  # noqa: F401  (fixtures)
