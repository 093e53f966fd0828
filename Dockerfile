# pileon image: slim, non-root, pinned base. Build: docker build -t pileon .
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
# A C compiler for the near-duplicate kernels (streams/detection/neardup/_kernels.c); build stage only.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY pyproject.toml setup.py README.md constraints.txt ./
COPY pileon pileon
COPY streams streams
COPY connectors connectors
# The tested versions (constraints.txt); no extras: the image needs no embedded broker and no
# dashboard builder.
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11.11-slim-bookworm
RUN groupadd --gid 10001 pileon \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin pileon \
 && install -d -o 10001 -g 10001 /var/lib/pileon
COPY --from=build /opt/venv /opt/venv
COPY pileon/core/watchlist.example.yaml /etc/pileon/watchlist/watchlist.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PILEON_WATCHLIST=/etc/pileon/watchlist/watchlist.yaml \
    PILEON_WORKER__DATA_DIR=/var/lib/pileon
USER 10001:10001
WORKDIR /var/lib/pileon
EXPOSE 6066 6067
ENTRYPOINT ["pileon"]
CMD ["worker"]
