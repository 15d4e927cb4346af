"""The platform's client to the site agents of its centers (see `client`)."""

from kboss.site_client.client import SimulatedCenter, SiteClient, SiteUnreachable

__all__ = ["SimulatedCenter", "SiteClient", "SiteUnreachable"]
