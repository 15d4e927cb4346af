"""Money of customer orgs: amounts in 元 as Decimal (`money`), the ledger of credits, charges and refunds whose sum
is the balance (`ledger`), and the provider's top-up and the customer's account view (`accounts`).

May import the core modules, `kboss.db`, `kboss.common` and `kboss.customers`.
"""
