# edgewarden: the admission webhook server image.
#   scripts/image                 # the supported build: podman, Debian bases made by mmdebstrap
#   docker build -t edgewarden .  # also works, from the official python image (larger)
# Stage 1 builds a virtualenv with the package and its exactly pinned dependencies
# (constraints.txt); stage 2 is the runtime with only that venv copied in: no pip, no
# setuptools, no build tools, nothing run at build time, no network needed at start-up.
# scripts/image passes two bases cut from one Debian snapshot: PYTHON_IMAGE with
# python3-venv, binutils (to strip native extensions) and gcc with Python's headers (for
# mypyc), RUNTIME_IMAGE with python3 and ca-certificates only (no shell tools, no package
# manager; see docs/image.md), and COMPILE=1: the admission path's modules compiled by
# mypyc (setup.py). A plain `docker build` leaves them pure Python.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG RUNTIME_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG COMPILE=0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Same path in both stages: the console script's shebang points into /opt/venv, and the
# venv's python is a link to the base's python3 (the same path in both bases).
RUN python3 -m venv /opt/venv
# Dependencies first, in their own layer (it survives source edits). Every version comes
# from constraints.txt, so a rebuild installs exactly what the tests ran against; only
# [project] dependencies, never the [test] extras.
COPY constraints.txt pyproject.toml ./
RUN python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-compile -c constraints.txt -r /tmp/requirements.txt
# Then the package itself, built with the pinned setuptools (and, with COMPILE=1, the pinned
# mypy, whose mypyc compiles setup.py's modules) and no dependency resolution left to do;
# the README is pyproject's long description. mypy and what it alone needs go again.
COPY README.md LICENSE setup.py ./
COPY webhook ./webhook
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt setuptools \
    && if [ "$COMPILE" = 1 ]; then /opt/venv/bin/pip install --no-cache-dir -c constraints.txt mypy; fi \
    && EDGEWARDEN_COMPILE=$COMPILE /opt/venv/bin/pip install --no-cache-dir --no-compile --no-deps --no-build-isolation -c constraints.txt . \
    && if [ "$COMPILE" = 1 ]; then /opt/venv/bin/pip uninstall --yes --quiet mypy mypy_extensions librt ast-serialize pathspec; fi \
    && /opt/venv/bin/pip check
# Trim the venv to what runs, then byte-compile it (the root filesystem is read-only, so
# nothing could be cached at start-up):
# - pip and setuptools go: nothing installs anything at runtime;
# - kubernetes/aio goes: the asyncio copy of the generated client (about half of the
#   kubernetes package), which edgewarden never imports (tests/image/test_image_recipe.py);
# - native extensions lose their debug symbols (uvloop ships 14 MB of them);
# - the generated kubernetes client is shipped compiled only (its source is 33 MB of
#   OpenAPI boilerplate; a traceback through it keeps file and line).
# (pip compiled nothing: --no-compile above; compileall does it once, here.)
RUN site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && /opt/venv/bin/pip uninstall --yes --quiet setuptools pip \
    && rm -rf "$site/kubernetes/aio" /opt/venv/bin/activate* \
    && if command -v strip >/dev/null; then find "$site" -name '*.so' -exec strip --strip-unneeded {} +; fi \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
         -x '/kubernetes/client/' /opt/venv/lib \
    && /opt/venv/bin/python -m compileall -q -b -j 0 --invalidation-mode unchecked-hash "$site/kubernetes/client" \
    && find "$site/kubernetes/client" -name '*.py' -delete \
    && find "$site/kubernetes/client" -name __pycache__ -type d -prune -exec rm -rf {} + \
    && /opt/venv/bin/edgewarden --version

FROM ${RUNTIME_IMAGE}
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
COPY LICENSE /usr/share/doc/edgewarden/LICENSE
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
