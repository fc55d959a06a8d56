"""Errors that several layers raise and catch: here, so that none imports another
only for them."""


class DatabaseUnavailableError(RuntimeError):
    """The database cannot be reached right now: the API answers 503, never 500."""
