import logging


def setup_logging(level: int = logging.INFO) -> None:
    """One log format for the scripts and the services."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
