"""The operation kinds on clusters (build a control plane, join and remove workers, remove a cluster, drain) and
their steps, for centers served by a site agent and for simulated centers, plus the guard that keeps a removal
from stranding a paid instance.

May import everything below the API: the core modules, the adapters, `kboss.common`, `kboss.catalog`,
`kboss.pricing`, `kboss.instances`, `kboss.operations` and `kboss.sites`.
"""
