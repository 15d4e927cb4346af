"""The platform's side of a site: the client to a center's site agent (`client`) and the simulated site
(`simulated`).

May import the core modules, the adapters (`kboss.db`, `kboss.kube`) and `kboss.common`.
"""

from kboss.sites.client import SimulatedCenter, SiteClient, SiteUnreachable

__all__ = ["SimulatedCenter", "SiteClient", "SiteUnreachable"]
