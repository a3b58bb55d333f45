# Local stand-in for python:3.11-slim-bookworm, for machines that cannot reach Docker Hub.
# Built by container/local-base-images from a debootstrap'ed Debian bookworm (fw-local/debian:bookworm);
# bookworm's python3 is CPython 3.11. Not for publishing: use the official image wherever it is reachable.
ARG DEBIAN_IMAGE=fw-local/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
ENV LANG=C.UTF-8
CMD ["python3"]
