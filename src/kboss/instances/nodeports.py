"""NodePorts are unique per cluster: an instance's requested outside port is checked before anything is applied.

The check answers which instance holds the port; the unique index on (clusterid, source_outsideport) of migration
0005 settles two creates racing for one port (the loser's transaction fails, and `holder` names the winner).
A port left for Kubernetes to assign (NULL) is not compared: NULLs are distinct in the index.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.db.models_instances import Instance
from kboss.errors import Conflict


class NodePortTaken(Conflict):
    code = "nodeport_taken"

    def __init__(self, port: int, holder_id: str, holder_name: str) -> None:
        super().__init__(f"NodePort {port} 已被本集群的实例 {holder_name} ({holder_id}) 使用,请换一个端口")


async def holder(session: AsyncSession, cluster_id: str, port: int | None, exclude: str = "") -> Instance | None:
    if port is None:
        return None
    query = select(Instance).where(
        Instance.clusterid == cluster_id, Instance.source_outsideport == port, Instance.id != exclude
    )
    return (await session.scalars(query.limit(1))).first()


async def ensure_free(session: AsyncSession, cluster_id: str, port: int | None, exclude: str = "") -> None:
    """Raise NodePortTaken when another instance of the cluster holds `port`."""
    found = await holder(session, cluster_id, port, exclude)
    if found is not None and port is not None:
        raise NodePortTaken(port, found.id, found.source_name)
