"""Every route but /healthz needs an API key (``X-API-Key`` or ``Authorization: Bearer``).

401 when the key is missing, unknown or revoked; 403 when its role is below the route's.
Web pages may also take the key as ``?key=`` so that a bookmarked board opens by itself; the
page then sends it as a header on each of its own requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.keys import ApiKey, KeyStore, Role

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")
_bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token")


def _check(request: Request, token: str | None, role: Role) -> ApiKey:
    if not token:
        raise HTTPException(
            401, "an API key is required (X-API-Key header)", {"WWW-Authenticate": "Bearer"}
        )
    keys: KeyStore = request.app.state.keys
    key = keys.verify(token)
    if key is None:
        raise HTTPException(401, "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
    if key.role.rank < role.rank:
        raise HTTPException(403, f"this needs the {role.value} role (the key is {key.role.value})")
    return key


def require(role: Role) -> Callable[..., ApiKey]:
    def dependency(
        request: Request,
        header: Annotated[str | None, Security(_header)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> ApiKey:
        return _check(request, header or (bearer.credentials if bearer else None), role)

    return dependency


def require_page(role: Role) -> Callable[..., ApiKey]:
    def dependency(
        request: Request,
        header: Annotated[str | None, Security(_header)],
        key: Annotated[str | None, Query(description="API key, for pages opened by link")] = None,
    ) -> ApiKey:
        return _check(request, header or key, role)

    return dependency


Viewer = Depends(require(Role.viewer))
Evaluator = Depends(require(Role.evaluator))
Admin = Depends(require(Role.admin))
