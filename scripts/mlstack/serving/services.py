"""Everything a request needs, built once in the lifespan."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from mlstack.prod_store import ProdDataStore
from mlstack.settings import ServingSettings

from .holder import ModelHolder
from .ratelimit import RateLimiter
from .retrainer import Retrainer
from .triggers import Triggers


@dataclass
class Services:
    """The settings, the model, the production-data store, the retrainer, its triggers,
    the worker's decode slots for large uploads and its /feedback rate limit."""

    settings: ServingSettings
    holder: ModelHolder
    prod: ProdDataStore
    retrainer: Retrainer
    triggers: Triggers
    large_decodes: threading.BoundedSemaphore = field(init=False)
    feedback_limiter: RateLimiter | None = field(init=False)

    def __post_init__(self) -> None:
        self.large_decodes = threading.BoundedSemaphore(self.settings.large_decodes_at_once)
        rate = self.settings.feedback_rate_per_minute
        self.feedback_limiter = RateLimiter(rate, self.settings.feedback_burst) if rate else None
