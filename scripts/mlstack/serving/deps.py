"""FastAPI dependencies: the services built in the lifespan, and the optional token."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from .ratelimit import retry_after
from .services import Services


def services_of(request: Request) -> Services:
    """The services of the app that got the request. /predict calls it itself: solving
    a dependency costs FastAPI about a quarter of the API's own work per request."""
    return request.app.state.services


# async: a plain `def` dependency would run in the thread pool on every request.
async def get_services(request: Request) -> Services:
    return services_of(request)


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


async def limit_feedback(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """FEEDBACK_RATE_PER_MINUTE per source (the token, else the address), when set."""
    limiter = services.feedback_limiter
    if limiter is None:
        return
    # With API_TOKEN set, a source is a (valid) token; a digest of it names the source.
    # Without, any header could be made up: the address is the source.
    if services.settings.api_token is not None and authorization:
        source = "token:" + hashlib.sha256(authorization.encode()).hexdigest()[:16]
    else:
        source = "address:" + (request.client.host if request.client else "unknown")
    wait = limiter.wait_time(source)
    if wait:
        after = retry_after(wait)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many feedback requests from this source: {limiter.per_minute:g} a minute "
            f"after a burst of {limiter.burst} (FEEDBACK_RATE_PER_MINUTE); retry in {after} s",
            headers={"Retry-After": after},
        )
