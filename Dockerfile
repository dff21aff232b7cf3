# syntax=docker/dockerfile:1.7
# One image for the API and the worker (the command picks), plus a `sandbox` target that adds the
# emulators for a demo without AWS. Slim, non-root, versions pinned by deploy/constraints.txt.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

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
