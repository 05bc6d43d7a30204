# leadsla worker image: `docker build -t leadsla .`, then
# `docker run -e LEADSLA_API_TOKEN=… leadsla run --broker kafka://…`. The worker
# listens on 0.0.0.0 here, so it refuses to start without a query API token.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    LEADSLA_WEB_HOST=0.0.0.0 LEADSLA_DATA_DIR=/var/lib/leadsla
WORKDIR /src
COPY pyproject.toml README.md ./
COPY leadsla leadsla
COPY models models
COPY streams streams
COPY dashboards dashboards
RUN pip install . && useradd --system --home-dir /var/lib/leadsla --create-home leadsla
USER leadsla
WORKDIR /var/lib/leadsla
EXPOSE 6066
ENTRYPOINT ["leadsla"]
CMD ["run"]
