"""FastAPI dependencies: the services built in the lifespan, and the optional token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from .services import Services


# async: a plain `def` dependency would run in the thread pool on every request.
async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def require_token(
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """Routes that change state need `Authorization: Bearer <API_TOKEN>` when it is set."""
    token = services.settings.api_token
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode()
    # compare_digest: the time taken does not tell how much of the token was right.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this route needs the header `Authorization: Bearer <API_TOKEN>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
