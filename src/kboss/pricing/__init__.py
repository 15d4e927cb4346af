"""What can be sold and what it costs: resource units and their conversions (`units`), price books and quotes
(`quotes`), and component stock, consumed and released without overselling (`stock`).

May import the core modules, `kboss.db`, `kboss.kube` (an instance's resource requests) and `kboss.common`.
"""
