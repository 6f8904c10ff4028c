"""Every route but /healthz needs an API key (``X-API-Key`` or ``Authorization: Bearer``).

401 when the key is missing, unknown or revoked; 403 when its role is below the route's.
Browsers use a cookie instead: a bookmarked board or report page opened with ``?key=`` trades
the key for a session at once and is redirected to the same URL without it, so the key stays
out of the address bar, the history, and the access logs of the API and of any proxy in front
of it. The cookie holds the session's random id, never the key: the session is kept on the
server (``api/keys.py``), ends after ``api.session_idle_hours`` unused and when its key is
revoked, so a cookie copied off a lab screen is worth little. The cookie is ``HttpOnly``,
``SameSite=Lax`` (sent when a link is followed, never on another site's requests), ``Secure``
whenever the request came over TLS (directly, or through a proxy ``api.forwarded_allow_ips``
trusts: uvicorn then takes the scheme from its ``X-Forwarded-Proto``), and serves only reads
(GET): whatever changes state needs the header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.responses import RedirectResponse
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from labmeter.api.deps import KeysDep
from labmeter.api.keys import ApiKey, KeyStore, Role

COOKIE = "labmeter_session"
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")
_bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token")
_cookie = APIKeyCookie(
    name=COOKIE, auto_error=False, description="the session a page link opened (GET only)"
)


def _check(keys: KeyStore, token: str | None, session: str | None, role: Role) -> ApiKey:
    """The key behind a key token, or else behind a session id; 401 or 403 otherwise."""
    if not token and not session:
        raise HTTPException(
            401, "an API key is required (X-API-Key header)", {"WWW-Authenticate": "Bearer"}
        )
    key = keys.verify(token) if token else keys.session(session or "")
    if key is None:
        what = "API key" if token else "session (open the page's link with its key again)"
        raise HTTPException(401, f"unknown or revoked {what}", {"WWW-Authenticate": "Bearer"})
    if key.role.rank < role.rank:
        raise HTTPException(403, f"this needs the {role.value} role (the key is {key.role.value})")
    return key


def _from_cookie(request: Request, cookie: str | None) -> str | None:
    return cookie if request.method in ("GET", "HEAD") else None


def require(role: Role) -> Callable[..., ApiKey]:
    def dependency(
        request: Request,
        keys: KeysDep,
        header: Annotated[str | None, Security(_header)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        cookie: Annotated[str | None, Security(_cookie)],
    ) -> ApiKey:
        token = header or (bearer.credentials if bearer else None)
        return _check(keys, token, _from_cookie(request, cookie), role)

    return dependency


def require_page(role: Role) -> Callable[..., ApiKey]:
    """For pages and downloads opened by link: a ``?key=`` given now comes first."""

    def dependency(
        request: Request,
        keys: KeysDep,
        header: Annotated[str | None, Security(_header)],
        cookie: Annotated[str | None, Security(_cookie)],
        key: Annotated[
            str | None, Query(description="API key, for a page opened by link (then a cookie)")
        ] = None,
    ) -> ApiKey:
        return _check(keys, key or header, _from_cookie(request, cookie), role)

    return dependency


def exchange_key(request: Request, keys: KeyStore) -> RedirectResponse | None:
    """A page opened with a (checked) ``?key=``: the same page without it, and a session
    cookie."""
    token = request.query_params.get("key")
    key = keys.verify(token) if token else None
    if key is None:
        return None
    clean = request.url.remove_query_params("key")
    location = clean.path + (f"?{clean.query}" if clean.query else "")
    moved = RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})
    moved.set_cookie(
        COOKIE,
        keys.open_session(key),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return moved


Viewer = Depends(require(Role.viewer))
Evaluator = Depends(require(Role.evaluator))
Admin = Depends(require(Role.admin))
