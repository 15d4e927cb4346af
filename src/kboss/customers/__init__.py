"""A provider's customers: customer organisations and their first admin (`service`), and which of the provider's
centers each customer may buy from (`publication`).

May import the core modules, `kboss.db`, `kboss.common` and `kboss.accounts`.
"""
