"""Everything a request needs, built once in the lifespan."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mlstack.errors import DatabaseUnavailableError
from mlstack.settings import ServingSettings
from mlstack.stores import request_retrain

from .holder import ModelHolder
from .ratelimit import RateLimiter
from .retrainer import Retrainer
from .triggers import Triggers

log = logging.getLogger("serving")


@dataclass
class Services:
    """The settings, the model, the production-data store, the retrainer, its triggers,
    the worker's decode slots for large uploads and its /feedback rate limit."""

    settings: ServingSettings
    holder: ModelHolder
    prod: Any  # mlstack.stores.open_prod_store: the file or the database
    retrainer: Retrainer
    triggers: Triggers
    large_decodes: threading.BoundedSemaphore = field(init=False)
    feedback_limiter: RateLimiter | None = field(init=False)
    _database: tuple[float, str | None] = field(default=(-1e9, None), init=False)

    def __post_init__(self) -> None:
        self.large_decodes = threading.BoundedSemaphore(self.settings.large_decodes_at_once)
        rate = self.settings.feedback_rate_per_minute
        self.feedback_limiter = RateLimiter(rate, self.settings.feedback_burst) if rate else None

    def due_retraining(self, rows: int) -> str | None:
        """The reason to retrain now that the store holds `rows` rows, or None (not due,
        or, with a database, another replica already recorded this retraining). The row
        is stored by then: a database gone away at this point only delays a retraining
        (the trainer, or this API at its next start, catches up)."""
        try:
            reason = self.triggers.due(rows, self.retrainer.busy)
            if reason is not None and not request_retrain(self.prod, rows, reason):
                return None
            return reason
        except DatabaseUnavailableError as exc:
            log.warning("row %d stored; its retraining check failed: %s", rows, exc)
            return None

    def database(self) -> str | None:
        """'ok' or 'down' with DATABASE_URL (checked at most once a second), else None."""
        ping = getattr(self.prod, "ping", None)
        if ping is None:
            return None
        checked, state = self._database
        if time.monotonic() - checked > 1.0:
            state = "ok" if ping() else "down"
            self._database = (time.monotonic(), state)
        return state
