"""`kboss keys status|rotate|reseal|prune`: the deployment key ring (docs/security.md, "Rotating the deployment key").

With the key file of the data dir (the default), `rotate` puts a new key first, then re-encrypts every secret under
it in one transaction; running processes reread the file and follow. `prune` drops the older keys once no secret
needs them. With KBOSS_SECRET_KEY the operator edits the variable on every process instead; `reseal` and `prune`
then do the database's part and say what to change.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.audit import trail
from kboss.cli.users import _run
from kboss.crypto import SecretBox, key_id
from kboss.db.sealed import SealedCount, census, reseal_all
from kboss.settings import get_settings

keys_app = typer.Typer(help="The deployment key ring: status, rotation", no_args_is_help=True)


def write_ring(path: Path, keys: list[str]) -> None:
    """Replace the key file in one step (a reader sees the old ring or the new one, never half of it), mode 0600."""
    spare = path.with_name(path.name + ".new")
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(spare, path)


def _box() -> SecretBox:
    return SecretBox(get_settings().key_ring())


async def _reseal(session: AsyncSession, box: SecretBox, command: str) -> list[SealedCount]:
    counts = await reseal_all(session, box)
    await session.commit()
    detail = {"command": f"keys {command}", "key": key_id(box.ring.primary), "secrets": sum(c.total for c in counts)}
    event = trail.Event(trail.KEYS_ROTATE, actor=trail.cli_actor(), address=trail.LOCAL_ADDRESS, detail=detail)
    await trail.record(session, event)
    return counts


def _print(counts: list[SealedCount], resealed: bool) -> None:
    for count in counts:
        if resealed:
            typer.echo(f"{count.column}: {count.total} re-encrypted, {count.on_older_keys} of them from older keys")
        else:
            typer.echo(f"{count.column}: {count.total} secrets, {count.on_older_keys} on older keys")


def _from_environment() -> bool:
    return bool(get_settings().secret_key)


@keys_app.command("status")
def keys_status() -> None:
    """The keys of the ring by id (never the keys), where they come from, and which secrets need which."""
    box = _box()
    source = "KBOSS_SECRET_KEY" if _from_environment() else str(box.ring.path)
    typer.echo(f"source: {source}")
    for index, key in enumerate(box.ring.current()):
        typer.echo(f"key {key_id(key)}" + (" (seals)" if index == 0 else " (opens only)"))
    _print(_run(lambda session: census(session, box)), False)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """A new deployment key first in the key file, then every secret re-encrypted under it (one transaction)."""
    if _from_environment():
        typer.echo(
            "error: the deployment key comes from KBOSS_SECRET_KEY: put a new key first (KBOSS_SECRET_KEY=new,old)"
            " on every process, restart them, then run `kboss keys reseal`",
            err=True,
        )
        raise typer.Exit(1)
    box = _box()
    assert box.ring.path is not None
    write_ring(box.ring.path, [secrets.token_urlsafe(48), *box.ring.current()])
    typer.echo(f"new key {key_id(box.ring.primary)} seals from now on")
    _print(_run(lambda session: _reseal(session, box, "rotate")), True)


@keys_app.command("reseal")
def keys_reseal() -> None:
    """Every secret re-encrypted under the ring's first key (one transaction)."""
    box = _box()
    _print(_run(lambda session: _reseal(session, box, "reseal")), True)


@keys_app.command("prune")
def keys_prune() -> None:
    """Drop every key but the first, once every secret opens with the first alone (re-encrypting first)."""
    box = _box()
    counts = _run(lambda session: _reseal(session, box, "prune"))
    _print(counts, True)
    older = [key_id(key) for key in box.ring.current()[1:]]
    if not older:
        typer.echo("the ring holds one key: nothing to prune")
    elif _from_environment():
        typer.echo(f"no secret needs keys {', '.join(older)} any more: remove them from KBOSS_SECRET_KEY")
    else:
        assert box.ring.path is not None
        write_ring(box.ring.path, [box.ring.primary])
        typer.echo(f"dropped keys {', '.join(older)}; logins signed with them end")
