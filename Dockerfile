# Minimal image: slim base, non-root, `gateway serve`. Mount gateway.yaml, policies/ and keys.yaml.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app gateway
COPY --from=build /install /usr/local
WORKDIR /app
COPY --chown=gateway gateway.yaml ./
COPY --chown=gateway policies ./policies
USER gateway
ENV GATEWAY_HOST=0.0.0.0 PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["gateway"]
CMD ["serve"]
