"""Every column that holds a sealed secret, and the two things a key rotation does with them all: re-encrypt under
the ring's first key, and count which secrets still need an older key.

A column that a service seals must be listed here, or a rotation would leave it behind and a pruned key would make
it unreadable; tests/db/test_sealed.py writes every kind of secret through the API and fails on a sealed value in
a column not listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from kboss.crypto import SecretBox, SecretUnreadable, is_sealed
from kboss.db.models import Center, Cluster, Device
from kboss.db.models_instances import Instance

SEALED_COLUMNS: tuple[InstrumentedAttribute[str], ...] = (
    Center.api_pwd,
    Device.adminpwd,
    Device.ssh_key,
    Cluster.kubeconfig,
    Cluster.clusterjoin,
    Instance.source_authpasswd,
)


class KeyMissing(SecretUnreadable):
    """A stored secret no key of the ring opens: the rotation stops and changes nothing."""

    code = "secret_key_missing"


@dataclass
class SealedCount:
    column: str
    total: int = 0
    # Secrets that only an older key of the ring opens (what a prune waits for).
    on_older_keys: int = 0


def column_name(column: InstrumentedAttribute[str]) -> str:
    return f"{column.class_.__tablename__}.{column.key}"


async def reseal_all(session: AsyncSession, box: SecretBox) -> list[SealedCount]:
    """Every sealed secret re-encrypted under the first key, in the caller's transaction (one commit: all or none).
    Rows are locked (PostgreSQL) so that a concurrent update of a secret waits instead of being overwritten."""
    counts = []
    for column in SEALED_COLUMNS:
        model = column.class_
        rows = (await session.execute(select(model.id, column).with_for_update())).all()
        count = SealedCount(column_name(column))
        for row_id, stored in rows:
            if not stored or not is_sealed(stored):
                continue
            count.total += 1
            count.on_older_keys += 0 if box.sealed_with_primary(stored) else 1
            await session.execute(
                update(model).where(model.id == row_id).values({column.key: _resealed(box, stored, column, row_id)})
            )
        counts.append(count)
    return counts


async def census(session: AsyncSession, box: SecretBox) -> list[SealedCount]:
    """How many secrets each column holds and how many of them still need an older key."""
    counts = []
    for column in SEALED_COLUMNS:
        count = SealedCount(column_name(column))
        for stored in (await session.scalars(select(column))).all():
            if stored and is_sealed(stored):
                count.total += 1
                count.on_older_keys += 0 if box.sealed_with_primary(stored) else 1
        counts.append(count)
    return counts


def _resealed(box: SecretBox, stored: str, column: InstrumentedAttribute[str], row_id: str) -> str:
    try:
        return box.reseal(stored)
    except SecretUnreadable:
        # Names the row, never the value; nothing has been committed yet.
        raise KeyMissing(f"{column_name(column)} 中编号 {row_id} 的密文无法用任何部署密钥解开,轮换已取消") from None
