# The whole app in one container: `ecology` (the TUI, or any subcommand) with its engine.
# Built from the repository root by containers/images/compose.yaml, which also sets the
# container's memory and CPU limits; `ecology containers calibrate` inside it measures which
# total compute rate those limits sustain. Without a Docker socket mounted, agents' code runs
# in the subprocess sandbox (as root here: one uid per agent, so pids and files are limited).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TERM=xterm-256color \
    COLORTERM=truecolor

WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY tui ./tui
COPY containers ./containers
RUN pip install . && rm -rf /src

WORKDIR /data
LABEL org.opencontainers.image.title="ecology" \
      ecology.image="app"
ENTRYPOINT ["ecology"]
