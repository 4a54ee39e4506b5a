# edgewarden: the admission webhook server image.
#   docker build -t edgewarden:0.1.0 .
# Stage 1 builds a virtualenv with the package and its exactly pinned dependencies
# (constraints.txt); stage 2 is the slim runtime with that venv copied in, no build tools,
# no pip run, no network needed at start-up.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Same path in both stages: the console script's shebang points into /opt/venv.
RUN python -m venv /opt/venv
# Dependencies first, in their own layer (it survives source edits). Every version comes
# from constraints.txt, so a rebuild installs exactly what the tests ran against.
COPY constraints.txt pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt
# Then the package itself (pure Python), with no dependency resolution left to do; the
# README is pyproject's long description.
COPY README.md ./
COPY webhook ./webhook
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps -c constraints.txt . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="edgewarden" \
      org.opencontainers.image.description="Policy-as-code admission webhook for Kubernetes Services and Ingresses" \
      org.opencontainers.image.licenses="Apache-2.0"
# Unbuffered logs (the audit log goes to stdout by default); no .pyc writes on a
# read-only root filesystem (the venv is byte-compiled at build time).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
COPY --from=build /opt/venv /opt/venv
# The shipped default policies (test suites and fixtures are kept out by .dockerignore);
# the Kubernetes manifests mount the policies ConfigMap over this folder. `serve` reads
# ./policies by default, hence this working directory.
WORKDIR /etc/edgewarden
COPY policies/ ./policies/
# Non-root, numeric (so runAsNonRoot can be verified by the kubelet), owns nothing it runs:
# the server writes only to mounted emptyDirs (/tmp, the certificate folder).
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["edgewarden"]
CMD ["serve"]
