# syntax=docker/dockerfile:1
# Sift's one image: web (`sift serve`), migrations (`sift db upgrade`) and workers (`sift worker`).

# ---------------------------------------------------------------- front-end assets
# htmx comes from npm at the version pinned in package-lock.json; nothing is fetched at run time.
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && mkdir -p static/vendor \
    && cp node_modules/htmx.org/dist/htmx.min.js static/vendor/ \
    && cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css static/vendor/

# ---------------------------------------------------------------- the application
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 sift \
    && useradd --system --uid 10001 --gid sift --home-dir /home/sift --create-home sift

# The wheel `make wheel` builds, and then that wheel installed (never the source tree):
# templates, static files (with the vendored htmx and Swagger UI from the assets stage),
# migrations and alembic.ini go inside the package (setup.py), so the image keeps no source
# tree and runs from any folder.
WORKDIR /build
COPY pyproject.toml setup.py MANIFEST.in NOTICE ./
COPY alembic.ini ./
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY --from=assets /build/static/vendor/ ./static/vendor/
COPY app ./app
COPY sift ./sift
RUN pip wheel . --no-deps -w /dist \
    && pip install "$(ls /dist/sift-*.whl)" \
    && cd / && rm -rf /build /dist
WORKDIR /home/sift

RUN mkdir -p /data && chown sift:sift /data
ENV SIFT_DATA_DIR=/data
VOLUME ["/data"]

USER sift
EXPOSE 8000
CMD ["sift", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
