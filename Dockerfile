# Frontier Watch container image: one process per container.
#   docker build -t frontierwatch .
#   docker run ... frontierwatch          # `frontierwatch run` (the default command)
#   docker run ... frontierwatch serve    # the HTTP side
# compose.yaml runs PostgreSQL, `run` and `serve` together; docs/container.md explains everything.
#
# Reproducible: the base image is a build argument (pin it by digest for releases, e.g.
# --build-arg BASE_IMAGE=python:3.11-slim-bookworm@sha256:...), and the dependencies are installed
# with the exact versions of container/constraints.txt within pyproject.toml's ranges.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------- build
# Builds the project's wheel and installs it with its dependencies into /opt/frontierwatch, a
# virtual environment the final stage copies. pip and setuptools stay behind here, and so do the
# test suites numpy, scipy, scikit-learn and matplotlib ship (70 MB nothing imports at run time).
FROM ${BASE_IMAGE} AS build

# Optional pip settings for builds behind a proxy or a mirror (pip reads them from the environment);
# this stage is not part of the final image. PIP_CERT must name a file put in container/local/ (kept
# out of git), e.g. --build-arg PIP_CERT=/src/container/local/ca.crt.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python3 -m venv /opt/frontierwatch
WORKDIR /src
COPY container/constraints.txt container/
COPY container/local/ container/local/
COPY pyproject.toml README.md ./
COPY bot/ bot/
COPY handlers/ handlers/
RUN /opt/frontierwatch/bin/pip install --constraint container/constraints.txt . \
 && /opt/frontierwatch/bin/pip uninstall --yes pip setuptools \
 && site=$(/opt/frontierwatch/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
 && for pkg in numpy scipy sklearn matplotlib mpl_toolkits; do find "$site/$pkg" -depth -type d -name tests -exec rm -rf {} +; done

# ---------------------------------------------------------------------------------------- final
FROM ${BASE_IMAGE}

# A fixed numeric user, so `runAsNonRoot` style checks can verify it without reading /etc/passwd.
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" frontierwatch \
 && useradd --system --uid "${APP_UID}" --gid frontierwatch --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin frontierwatch

COPY --from=build /opt/frontierwatch /opt/frontierwatch
COPY container/healthcheck.py /opt/frontierwatch/healthcheck.py

# Settings files are read relative to the working directory (config/sources.toml, config/topics.toml,
# config/webhooks.toml); they are root-owned and read-only to the bot. Mount your own over them.
# ./data is where the SQLite default would live (compose uses PostgreSQL instead).
WORKDIR /app
COPY config/sources.toml config/topics.toml config/webhooks.example.toml config/
RUN mkdir data && chown frontierwatch:frontierwatch data

# FW_METRICS_PORT makes `run` serve /metrics and /healthz (the health check needs it); FW_HOST
# opens both listeners to the container network, where Prometheus scrapes them. `serve` listens on
# PORT (8080); do not set PORT for `run` containers (it would start a second web server there).
# MPLCONFIGDIR: matplotlib (the trend chart) keeps its font cache there; the home is not writable.
ENV PATH=/opt/frontierwatch/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8 \
    MPLCONFIGDIR=/tmp/matplotlib \
    FW_HOST=0.0.0.0 \
    FW_METRICS_PORT=9464

USER ${APP_UID}:${APP_UID}
EXPOSE 8080 9464

# Asks the container's own process: `serve` on PORT, `run` on FW_METRICS_PORT (503 when its
# scheduler is stopped or the database does not answer). See container/healthcheck.py.
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["/opt/frontierwatch/bin/python", "/opt/frontierwatch/healthcheck.py"]

# SIGTERM (docker stop) ends either command cleanly within seconds.
ENTRYPOINT ["frontierwatch"]
CMD ["run"]
