"""What can be sold and what it costs: resource units and their conversions (`units`), quotes priced from a price
book (`quotes`), the quote service that reads and caches a center's price book (`price_books`), and component
stock, consumed and released without overselling (`stock`).

May import the core modules, `kboss.db`, `kboss.kube` (an instance's resource requests) and `kboss.common`.
"""
