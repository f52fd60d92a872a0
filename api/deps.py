"""Process-wide resources and the dependency aliases routes use.

One engine, one Redis client, one Temporal client and one JWT verifier per
process, made in the lifespan (``api.app``) and kept on ``app.state``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.auth import JwtVerifier, Principal, parse_authorization
from api.services.tracks import TrackCatalog
from domain.settings import Settings


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    temporal: Client
    verifier: JwtVerifier
    catalog: TrackCatalog


def resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed on success, rolled back on error."""
    async with resources(request).sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


_bearer = HTTPBearer(auto_error=False, description="A JWT (RS256) issued by api.scimigo.com.")


async def current_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # The rate-limit middleware may already have verified this request's token.
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = parse_authorization(request.headers.get("authorization"))
    principal = await resources(request).verifier.averify(token)
    request.state.principal = principal
    return principal


async def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    principal.require_role("admin")
    return principal


async def resources_of(request: Request) -> Resources:
    # Every dependency here is ``async def`` although none awaits: FastAPI runs a plain
    # ``def`` dependency in its thread pool, a thread hop per request for an attribute read.
    return resources(request)


ResourcesDep = Annotated[Resources, Depends(resources_of)]
# scope="function": the transaction commits before the response is sent. With the default
# ("request") FastAPI commits after sending it, so a client could read its own 201 before
# the row exists (a create retried at once was answered 201 twice).
SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
AdminDep = Annotated[Principal, Depends(require_admin)]


async def settings_of(request: Request) -> Settings:
    return resources(request).settings


async def redis_of(request: Request) -> Redis:
    return resources(request).redis


async def temporal_of(request: Request) -> Client:
    return resources(request).temporal


async def catalog_of(request: Request) -> TrackCatalog:
    return resources(request).catalog


SettingsDep = Annotated[Settings, Depends(settings_of)]
CatalogDep = Annotated[TrackCatalog, Depends(catalog_of)]
RedisDep = Annotated[Redis, Depends(redis_of)]
TemporalDep = Annotated[Client, Depends(temporal_of)]
