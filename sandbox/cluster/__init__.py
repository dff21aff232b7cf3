"""A real Temporal cluster on this machine, for the cluster tests and the fleet benchmark:
the server built from its Go module, PostgreSQL from Debian's packages, one process per service,
mTLS everywhere. Never part of a deployment: the deployment is docker-compose.yml (or the
platform team's own), started from the same template (deploy/temporal/server.yaml)."""
