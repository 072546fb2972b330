# The emulator itself in a container (docker-compose.yml runs it against the host's Docker engine).
# Users with a registry keep the default base; offline machines pass
# --build-arg BASE_IMAGE=sagemaker-emulator-base:py311 (built by scripts/build-base-image).
#
# Offline builds: the dependencies' wheels, prepared on the host with `pip wheel . -w dist/wheels`,
# are installed with --no-index (the project itself from the sources copied here, built with the
# base image's setuptools), so pip inside the build never needs PyPI. Without dist/wheels: PyPI.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
WORKDIR /app
# Debian's python refuses system-wide pip installs without this (PEP 668); harmless elsewhere.
ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# `dist*` may match nothing (no dist/), which COPY accepts because pyproject.toml matches.
COPY pyproject.toml README.md dist* /tmp/dist/
# Dependencies first, in their own layer, so editing the sources does not reinstall them.
RUN if ls /tmp/dist/wheels/*.whl >/dev/null 2>&1; then \
        python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/dist/pyproject.toml', 'rb'))['project']['dependencies']))" \
            > /tmp/requirements.txt \
        && python3 -m pip install --no-index --find-links /tmp/dist/wheels -r /tmp/requirements.txt ; \
    fi
COPY pyproject.toml README.md ./
COPY emulator ./emulator
COPY handlers ./handlers
COPY storage ./storage
RUN if ls /tmp/dist/wheels/*.whl >/dev/null 2>&1; then \
        python3 -m pip install --no-index --find-links /tmp/dist/wheels --no-build-isolation . ; \
    else \
        python3 -m pip install . ; \
    fi \
    && rm -rf /tmp/dist build && sagemaker-emulator --help >/dev/null
# The data dir must be the same path on the host and here (job containers are siblings started
# through the host's Docker socket, and bind-mount paths are resolved on the host).
ENV SAGEMAKER_EMULATOR_DATA_DIR=/var/lib/sagemaker-emulator SAGEMAKER_EMULATOR_HOST=127.0.0.1 \
    SAGEMAKER_EMULATOR_PORT=5000 PYTHONUNBUFFERED=1
EXPOSE 5000
ENTRYPOINT ["sagemaker-emulator", "serve"]
