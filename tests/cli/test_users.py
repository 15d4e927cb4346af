"""`kboss user create|disable|enable|set-role|set-password|signout|unlock` against a running app's database: each
change that alters what a login stands for ends the user's sessions on the server at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from kboss.cli.users import user_app
from kboss.settings import get_settings
from tests.support.api import Api, running_api

LOGIN = "/api/v1/auth/login"


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _cli(db_url: str, *args: str) -> Result:
    """In a thread: the command runs its own event loop, as it does from a shell."""
    env = {"KBOSS_DATABASE_URL": db_url}
    return await asyncio.to_thread(CliRunner().invoke, user_app, list(args), env=env, catch_exceptions=False)


async def _status(api: Api, username: str, password: str = "pass-word-1") -> int:
    answer = await api.http.post(LOGIN, json={"username": username, "password": password})
    api.http.cookies.clear()
    return answer.status_code


async def _me(api: Api, token: str) -> tuple[int, str]:
    answer = await api.http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    body = answer.json()
    return answer.status_code, body.get("role") or body.get("detail", "")


async def test_create_set_role_and_set_password(db_url: str, data_dir: Path) -> None:
    async with running_api(db_url, data_dir, session_check_seconds=0) as api:
        created = await _cli(db_url, "create", "--username", "alice", "--password", "pass-word-1", "--org", "acme")
        assert created.exit_code == 0 and "created member alice" in created.output
        token = (await api.http.post(LOGIN, json={"username": "alice", "password": "pass-word-1"})).json()
        token, _ = token["access_token"], api.http.cookies.clear()
        assert await _me(api, token) == (200, "member")

        promoted = await _cli(db_url, "set-role", "alice", "admin")
        assert promoted.exit_code == 0 and "every session" in promoted.output
        assert (await _me(api, token))[0] == 401  # the old token no longer stands for anyone
        bad_role = await _cli(db_url, "set-role", "alice", "owner")
        assert bad_role.exit_code == 1 and "参数 role 无效" in bad_role.output

        changed = await _cli(db_url, "set-password", "alice", "--password", "other-pass-2")
        assert changed.exit_code == 0
        assert await _status(api, "alice") == 401 and await _status(api, "alice", "other-pass-2") == 200
        short = await _cli(db_url, "set-password", "alice", "--password", "short")
        assert short.exit_code == 1 and "至少 8 个字符" in short.output
        missing = await _cli(db_url, "set-password", "nobody", "--password", "long-enough")
        assert missing.exit_code == 1 and "用户 nobody 不存在" in missing.output


async def test_disable_enable_and_signout(db_url: str, data_dir: Path) -> None:
    async with running_api(db_url, data_dir, session_check_seconds=0) as api:
        alice = await api.user("alice", "acme")
        assert (await _cli(db_url, "disable", "alice")).exit_code == 0
        assert await _me(api, alice.token) == (401, "账号已停用,请联系管理员")
        assert await _status(api, "alice") == 401
        assert (await _cli(db_url, "enable", "alice")).exit_code == 0
        assert await _status(api, "alice") == 200

        bob = await api.user("bob", "acme")
        assert (await _me(api, bob.token))[0] == 200
        assert (await _cli(db_url, "signout", "bob")).exit_code == 0
        assert (await _me(api, bob.token))[0] == 401


async def test_unlock_lifts_a_lockout(db_url: str, data_dir: Path) -> None:
    async with running_api(db_url, data_dir, login_lockout_after=3) as api:
        await api.user("alice", "acme")
        for _ in range(3):
            await _status(api, "alice", "wrong-pass")
        assert await _status(api, "alice") == 429
        unlocked = await _cli(db_url, "unlock", "alice", "--address", "127.0.0.1")
        assert unlocked.exit_code == 0 and "account:alice" in unlocked.output and "address:127.0.0.1" in unlocked.output
        assert await _status(api, "alice") == 200
        assert "nothing to unlock" in (await _cli(db_url, "unlock", "alice")).output


async def test_remove_ends_the_users_sessions_at_once(db_url: str, data_dir: Path) -> None:
    """(A user who still owns instances is kept: tests/customers/test_buying.py.)"""
    async with running_api(db_url, data_dir, session_check_seconds=0) as api:
        alice = await api.user("alice", "acme")
        removed = await _cli(db_url, "remove", "alice")
        assert removed.exit_code == 0 and "removed alice" in removed.output
        assert await _me(api, alice.token) == (401, "登录已失效(会话不存在或账号已删除),请重新登录")
        assert await _status(api, "alice") == 401
        assert "用户 nobody 不存在" in (await _cli(db_url, "remove", "nobody")).output
