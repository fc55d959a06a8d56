"""Everything a request needs, built once in the lifespan."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from mlstack.prod_store import ProdDataStore
from mlstack.settings import ServingSettings

from .holder import ModelHolder
from .retrainer import Retrainer
from .triggers import Triggers


@dataclass
class Services:
    """The settings, the model, the production-data store, the retrainer, its triggers
    and the worker's decode slots for large uploads."""

    settings: ServingSettings
    holder: ModelHolder
    prod: ProdDataStore
    retrainer: Retrainer
    triggers: Triggers
    large_decodes: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.large_decodes = threading.BoundedSemaphore(self.settings.large_decodes_at_once)
