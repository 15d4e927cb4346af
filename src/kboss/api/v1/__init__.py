"""The native REST API under /api/v1: resources, HTTP status codes, OpenAPI at /api/v1/openapi.json."""
