# OMNIX API image: `docker build -t omnix .` (or `make docker`), then
#   docker run -p 8000:8000 -v omnix-data:/data omnix
# Configuration is by OMNIX_* environment variables (see docs/); for production set at least
# OMNIX_ENV=production, OMNIX_AUTH=jwt and the JWT key, and the store/events/bus URLs.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv with the dependencies, then the project -----------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the code (a regular, non-editable install into the venv).
COPY README.md ./
COPY domain ./domain
COPY adapters ./adapters
COPY schema ./schema
COPY resolvers ./resolvers
COPY subscriptions ./subscriptions
RUN pip install --no-deps . \
    && python -c "import schema.cli" \
    && omnix --help > /dev/null

# --- runtime: the venv only, run as an unprivileged user -----------------------------------------
FROM ${PYTHON_IMAGE}

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMNIX_DATA_DIR=/data \
    OMNIX_PORT=8000

RUN groupadd --system --gid 10001 omnix \
    && useradd --system --uid 10001 --gid omnix --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin omnix \
    && mkdir -p /app /data \
    && chown omnix:omnix /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER omnix:omnix
VOLUME ["/data"]
EXPOSE 8000

# slim has no curl: ask /healthz with the standard library (urlopen raises on a non-2xx answer)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('OMNIX_PORT', '8000'), timeout=4)"]

STOPSIGNAL SIGTERM
CMD ["omnix", "serve", "--host", "0.0.0.0"]
