"""The provider's catalog: computing centers, devices (and their state table), labels, clusters (and their state
table), components.

CRUD with tenant scoping and validation, one module per noun. May import the core modules, the adapters
(`kboss.db`, `kboss.kube`), `kboss.common`, `kboss.pricing` (a component's quote), `kboss.sites` (whether a center is
simulated) and `kboss.operations` (the step names a cluster's state follows); never `instances`, `clusters`, `api`.
"""
