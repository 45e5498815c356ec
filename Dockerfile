# The server as a package: the wheel built from this checkout, installed (not editable) over
# the pinned, hash-checked runtime dependencies, and run by an unprivileged user.
FROM python:3.12-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md MANIFEST.in ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements-runtime.lock /tmp/
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements-runtime.lock \
    && rm /tmp/requirements-runtime.lock
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps /tmp/dist/craftdesk-*.whl && rm -r /tmp/dist
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/craftdesk craftdesk
# The SQLite default (./craftdesk.db) lands in the user's own folder.
WORKDIR /var/lib/craftdesk
USER 10001:10001
EXPOSE 8000
# serve applies the migrations first.
CMD ["craftdesk", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
