"""Fast checks without a server: pagination, time zones, schemas, the README and the docs."""
