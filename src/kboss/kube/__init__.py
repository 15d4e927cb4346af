"""The Kubernetes adapter: a small API client, objects built as data (manifests, labels, instance specs),
server-side apply, node operations, products and where they fit (`products`, `capacity`), metrics and views.

May import only the core modules.
"""
