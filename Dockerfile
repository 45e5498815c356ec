FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir -e .
EXPOSE 8000
# serve applies the migrations first.
CMD ["craftdesk", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
