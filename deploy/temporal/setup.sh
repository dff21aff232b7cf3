#!/bin/sh
# The namespace and the search attributes the engine lists by, once the frontends answer:
# idempotent (docker-compose.yml's temporal-setup job; the cluster tests run this same file).
# Needs the temporal CLI on PATH and its environment: TEMPORAL_ADDRESS, and for mTLS
# TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH
# and TEMPORAL_TLS_SERVER_NAME (the temporal CLI's own variables).
# NAMESPACE (default), RETENTION (30d).
#
# The attributes are Keyword: SQL visibility pre-allocates 10 Keyword columns per namespace and
# the engine takes 8 of them (`vend doctor` counts what is left).
set -eu
namespace="${NAMESPACE:-default}"
attributes="VendingStatus VendingStep VendingRequester VendingOU VendingAccountId VendingKind VendingOwner VendingDrift"

# A new namespace reaches every frontend's cache within seconds, not at once: retry a while.
retry() {
  tries=0
  until "$@"; do
    tries=$((tries + 1))
    [ "$tries" -lt 60 ] || return 1
    sleep 1
  done
}

namespace_ready() {
  temporal operator namespace describe -n "$namespace" >/dev/null 2>&1 \
    || temporal operator namespace create -n "$namespace" --retention "${RETENTION:-30d}"
}

attribute_ready() {  # an attribute already there is left as it is (vend doctor checks its type)
  temporal operator search-attribute list -n "$namespace" -o json | grep -q "\"$1\"" \
    || temporal operator search-attribute create -n "$namespace" --name "$1" --type Keyword
}

retry namespace_ready
for name in $attributes; do
  retry attribute_ready "$name"
done
