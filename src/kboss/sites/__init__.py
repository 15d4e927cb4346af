"""The platform's side of a site: the protocol a site offers (`protocol`), the HTTP client to a center's site
agent (`client`, `events`), and the simulated site (`simulated`), which plays the same plan on simulated machines.

May import the core modules, the adapters (`kboss.db`, `kboss.kube`), `kboss.wire` and `kboss.common`.
"""

from kboss.sites.client import SimulatedCenter, SiteClient, SiteUnreachable

__all__ = ["SimulatedCenter", "SiteClient", "SiteUnreachable"]
