# The naftiko runtime as a container image (README "Deploy").
#
#   docker build -t naftiko:0.1.0 .
#   docker run --rm -p 8080:8080 -p 9090:9090 -p 9191:9191 \
#     -v "$PWD/deploy/kubernetes/capabilities:/capabilities:ro" \
#     -e CUSTOMER_IO_USER -e CUSTOMER_IO_PASS naftiko:0.1.0
#
# Stage 1 builds the project and its dependencies into a virtual environment (every dependency
# ships manylinux wheels, so no compiler is needed); stage 2 copies only that environment onto a
# clean base and runs it as an unprivileged user. tests/unit/test_deploy_manifests.py lints this
# file with hadolint and replays its RUN and ENTRYPOINT in a fresh venv.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime ./runtime
RUN python -m venv /opt/naftiko && /opt/naftiko/bin/pip install --no-cache-dir /src

FROM python:3.11-slim-bookworm
COPY --from=build /opt/naftiko /opt/naftiko
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin naftiko
ENV PATH=/opt/naftiko/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001
WORKDIR /capabilities
# The ports of the capability files under deploy/kubernetes/capabilities: REST, MCP, control.
EXPOSE 8080 9090 9191
ENTRYPOINT ["naftiko"]
CMD ["run", "--host", "0.0.0.0", "/capabilities"]
