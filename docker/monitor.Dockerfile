# The monitor image: ingestion, NannyML analysis, metrics, reports and the operator loop.
# Its own image, apart from the predictor's Bento (no BentoML, no training code here).
#
#   docker build -f docker/monitor.Dockerfile -t <registry>/modelguard-monitor:<tag> .
#
# Not built in this repository's CI: the machines have no Docker engine. The chart runs it
# as uid/gid 10001 with a read-only root filesystem; state lives on the PVC at
# MONITOR_DB_PATH, reports under MONITOR_REPORT_DIR.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NML_DISABLE_USAGE_LOGGING=1 \
    BENTOML_DO_NOT_TRACK=true \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
# Only what the monitor imports: the shared contract and the monitor package.
COPY pyproject.toml README.md ./
COPY contract/ contract/
COPY monitor/ monitor/
RUN pip install ".[monitor]" \
 && groupadd --system --gid 10001 modelguard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin modelguard

USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "monitor", "serve"]
