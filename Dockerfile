# labmeter's server roles (collector, API, grafana push) in one image; the agent runs on lab PCs.
#   docker build -t labmeter:local .        (deploy/docker-compose.yml builds it for you)
#   docker run --rm labmeter:local collector --help
FROM python:3.12-slim

# No .pyc writes at run time, logs straight to docker logs.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The PDF report embeds DejaVu Sans (api/report/pdf.py); the slim image has no fonts.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/labmeter
COPY pyproject.toml README.md ./
COPY labmeter/ labmeter/
COPY dashboards/ dashboards/
RUN pip install '.[server]' \
    && useradd --system --home-dir /var/lib/labmeter --shell /usr/sbin/nologin labmeter \
    && mkdir -p /var/lib/labmeter && chown labmeter:labmeter /var/lib/labmeter

# `labmeter grafana push` finds the dashboards here (the package is installed, not editable).
ENV LABMETER_GRAFANA_DIR=/opt/labmeter/dashboards/grafana
USER labmeter
WORKDIR /var/lib/labmeter
ENTRYPOINT ["labmeter"]
CMD ["--help"]
