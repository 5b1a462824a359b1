# The tabstream image: API, worker and projection (pick one with the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install .
RUN useradd --create-home --uid 10001 tabstream && mkdir -p /data /artifacts \
    && chown tabstream /data /artifacts
USER tabstream
VOLUME ["/data", "/artifacts"]
EXPOSE 8000 9100
CMD ["tabstream", "api", "--host", "0.0.0.0", "--port", "8000"]
