"""The operation kinds on clusters (build a control plane, join and remove workers, remove a cluster, drain):
their steps, declared once with their timeouts (`plan`), written against the site protocol (`build`, `nodes`,
reached through `site_access`), the same for centers served by a site agent and for simulated centers; the starts
and catalog rows of those operations (`ops`, `drain`, `reads`), and the guard that keeps a removal from stranding
a paid instance (`removal_guard`).

May import everything below the API: the core modules, the adapters, `kboss.wire` (the provisioning plan),
`kboss.common`, `kboss.catalog`, `kboss.pricing`, `kboss.instances`, `kboss.operations` and `kboss.sites`.
"""
