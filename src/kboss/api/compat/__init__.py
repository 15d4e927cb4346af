"""Routes at the spec's exact paths (`/dev/cpcc/...`, `/computing/...`), answering its envelope."""
