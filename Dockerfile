# Voyagent API server. No Docker engine runs on the development machines, so this file is kept simple
# and is not exercised by the test suite; it mirrors what `bin/serve` does.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VOYAGENT_HOST=0.0.0.0 \
    VOYAGENT_DATA_DIR=/var/lib/voyagent

WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY voyagent ./voyagent
COPY sql ./sql
COPY openapi.yaml schema.sql ./
# The package's openapi.yaml, schema.sql and sql/ are symlinks to the files above; pip copies them in.
RUN pip install --no-cache-dir . \
    && useradd --system --create-home --home-dir /var/lib/voyagent voyagent

USER voyagent
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"
CMD ["voyagent", "serve", "--host", "0.0.0.0"]
