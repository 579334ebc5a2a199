# The gateway image: slim base, non-root, read-only root filesystem friendly.
#
#   docker build -t llm-gateway .                                  # no NER model
#   docker build -t llm-gateway --build-arg NER_MODEL=1 .          # + requirements-nlp.txt
#
# Mount gateway.yaml (or set GATEWAY_CONFIG), policies/ and keys.yaml; the only paths written
# at run time are under /var/lib/gateway (SQLite audit file and spool: GATEWAY_AUDIT_DB,
# GATEWAY_AUDIT_SPOOL), so the container runs with a read-only root filesystem and a volume
# (or emptyDir) there. `gateway migrate` is the same image with another command.
FROM python:3.11-slim AS build
ARG NER_MODEL=""
WORKDIR /src
COPY pyproject.toml README.md requirements-nlp.txt ./
COPY gateway ./gateway
RUN pip install --no-cache-dir --prefix=/install . \
 && if [ -n "$NER_MODEL" ]; then \
      pip install --no-cache-dir --prefix=/install --no-deps --require-hashes \
        -r requirements-nlp.txt; \
    fi

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app gateway \
 && mkdir -p /var/lib/gateway && chown gateway /var/lib/gateway
COPY --from=build /install /usr/local
WORKDIR /app
COPY --chown=gateway gateway.yaml ./
COPY --chown=gateway policies ./policies
USER 10001
ENV GATEWAY_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_AUDIT_DB=/var/lib/gateway/audit.db \
    GATEWAY_AUDIT_SPOOL=/var/lib/gateway/audit-spool \
    TLDEXTRACT_CACHE=/tmp/tldextract
VOLUME ["/var/lib/gateway"]
EXPOSE 8080
# Liveness only: /healthz never depends on Redis or PostgreSQL (readiness is /readyz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["gateway"]
CMD ["serve"]
