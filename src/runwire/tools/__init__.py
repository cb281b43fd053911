"""Tools: the units of work a workflow step runs (interface in base, lookup in registry)."""
