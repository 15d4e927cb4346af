"""An in-process kboss app with an HTTP client, and helpers to log in as users of several orgs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from kboss.accounts import auth
from kboss.app import create_app
from kboss.common.context import ROLE_ADMIN, ROLE_MEMBER
from kboss.settings import Settings

TEST_KEY = "test-deployment-key-0123456789"


@dataclass
class Api:
    app: FastAPI
    http: httpx.AsyncClient

    async def user(self, username: str, org: str, admin: bool = True, password: str = "pass-word-1") -> User:
        state = self.app.state.kboss
        async with state.sessions() as session:
            await auth.create_user(session, username, password, org, ROLE_ADMIN if admin else ROLE_MEMBER)
        response = await self.http.post("/api/v1/auth/login", json={"username": username, "password": password})
        response.raise_for_status()
        token = response.json()["access_token"]
        # Login also sets the console cookie; tests authenticate explicitly, so keep the shared client anonymous.
        self.http.cookies.clear()
        return User(self.http, {"Authorization": f"Bearer {token}"}, token)


@dataclass
class User:
    http: httpx.AsyncClient
    headers: dict[str, str]
    token: str

    async def call(self, path: str, method: str = "POST", **params: Any) -> dict[str, Any]:
        """Call a compat endpoint with form parameters (POST) or a query string (GET); return the envelope."""
        if method == "GET":
            response = await self.http.get(path, params=params, headers=self.headers)
        else:
            response = await self.http.post(path, data=params, headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def ok(self, path: str, method: str = "POST", **params: Any) -> Any:
        body = await self.call(path, method, **params)
        assert body["status"] is True, body
        return body["data"]

    async def refused(self, path: str, method: str = "POST", **params: Any) -> str:
        body = await self.call(path, method, **params)
        assert body["status"] is False, body
        message: str = body["msg"]
        return message


def settings_for(db_url: str, data_dir: Path, **overrides: Any) -> Settings:
    # secret_key="" in the overrides: the key ring of the data dir's key file, as a deployment without the variable.
    return Settings(data_dir=data_dir, database_url=db_url, **{"secret_key": TEST_KEY, **overrides})


@asynccontextmanager
async def running_api(db_url: str, data_dir: Path, **overrides: Any) -> AsyncIterator[Api]:
    app = create_app(settings_for(db_url, data_dir, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kboss.test") as http:
            yield Api(app, http)
