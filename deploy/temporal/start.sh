#!/bin/sh
# Start one Temporal service (frontend, history, matching or worker) from server.yaml beside
# this script, broadcasting this host's own address unless told another: the temporal image's
# entrypoint (docker-compose.yml), and how the cluster tests start each of their nodes.
# Needs temporal-server on PATH and the environment server.yaml documents.
set -eu
service="$1"
here="$(dirname "$0")"
: "${TEMPORAL_BROADCAST_ADDRESS:=$(hostname -i | cut -d' ' -f1)}"
export TEMPORAL_BROADCAST_ADDRESS
# No authorizer: mTLS is the authentication (only clients with a certificate of the cluster's
# CA get in), and the flag says so rather than the server warning at every start.
exec temporal-server --config-file "${TEMPORAL_CONFIG_FILE:-$here/server.yaml}" --allow-no-auth \
  start --service "$service"
