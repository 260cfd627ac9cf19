# check=skip=SecretsUsedInArgOrEnv
# Omnicenter production image: one image for every role (web, ws, worker, beat, migrate);
# docker-compose.yml picks the command. Only classic Dockerfile features are used (no RUN --mount),
# so it builds with BuildKit and with the legacy builder alike.

ARG PYTHON_IMAGE=python:3.13-slim-bookworm

# ---------------------------------------------------------------------------------------------
# Build stage: resolve the locked dependencies, collect static files, compile translations.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

# gettext provides msgfmt for compilemessages; it is not needed at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*

RUN pip install --no-cache-dir "uv==0.13.9"

# Use the image's own Python, never a downloaded one; copy files into the venv instead of
# hard-linking from the cache (the cache is not kept); precompile bytecode for faster starts.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.13 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependencies first: this layer is rebuilt only when pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1

# A throwaway key so settings import during the build; the real SECRET_KEY comes from the
# environment at run time and is never baked into the image.
# DEBUG=0 selects the manifest static storage that production serves; the build-only Fernet key
# keeps settings from generating a key file into the image.
ARG SECRET_KEY=build-only-not-a-secret
ARG FIELD_ENCRYPTION_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
RUN export SECRET_KEY="$SECRET_KEY" FIELD_ENCRYPTION_KEYS="$FIELD_ENCRYPTION_KEYS" DEBUG=0 \
    && python manage.py collectstatic --noinput \
    && mkdir -p locale \
    && python manage.py compilemessages --ignore .venv \
    && rm -f var/secret_key var/field_encryption_key \
    && mkdir -p var/media

# ---------------------------------------------------------------------------------------------
# Runtime stage: same base image (the venv's interpreter symlinks point into it), no build tools.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

RUN groupadd --system --gid 10001 omnicenter \
    && useradd --system --uid 10001 --gid omnicenter --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin omnicenter

WORKDIR /app

# Code and dependencies stay owned by root (read-only for the app); only var/ is writable,
# and the media volume mounted at /app/var/media inherits that ownership when first created.
COPY --from=build /app /app
RUN chown -R omnicenter:omnicenter /app/var

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=omnicenter.settings

USER omnicenter

EXPOSE 8000 8001

# Probes the WSGI server. The Host header is taken from ALLOWED_HOSTS (first entry, a leading-dot
# wildcard made concrete) so Django does not reject the probe with 400; X-Forwarded-Proto keeps a
# SECURE_SSL_REDIRECT=1 deployment from answering the probe with a redirect. urlopen raises on the
# 503 that /healthz returns when the database is down, which fails the check.
# Services that serve no HTTP on port 8000 (ws, worker, beat, migrate) override this in compose.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; h = (os.environ.get('ALLOWED_HOSTS') or 'localhost').split(',')[0].strip().lstrip('.'); h = 'localhost' if h in ('', '*') else h; u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': h, 'X-Forwarded-Proto': 'https'}), timeout=8)"]

CMD ["gunicorn", "omnicenter.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-"]
