"""The web console: static files (vanilla JS, no build step) served by the platform at `/`."""
