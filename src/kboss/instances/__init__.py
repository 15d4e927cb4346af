"""Container instances sold to customers: the service that creates, changes and deletes them (`service`), their
state table and its one transition function (`states`), the recovery of half-changed ones (`sweeper`), their rows
and reads (`records`), their health from the cluster's pods (`health`), the buy page, the boards, node ports.

May import the core modules, the adapters, `kboss.common`, `kboss.catalog`, `kboss.pricing` and `kboss.sites`;
never `kboss.clusters` (cluster operations look at instances, not the other way round) nor `kboss.api`.
"""
