# The emulator itself in a container. Users with a registry keep the default base; offline machines
# pass --build-arg BASE_IMAGE=sagemaker-emulator-base:py311 (built by scripts/build-base-image).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
WORKDIR /app
COPY pyproject.toml README.md ./
COPY emulator ./emulator
COPY handlers ./handlers
COPY storage ./storage
RUN python3 -m pip install --no-cache-dir --break-system-packages . 2>/dev/null \
    || python3 -m pip install --no-cache-dir .
ENV SAGEMAKER_EMULATOR_DATA_DIR=/data SAGEMAKER_EMULATOR_HOST=0.0.0.0 SAGEMAKER_EMULATOR_PORT=5000
EXPOSE 5000
ENTRYPOINT ["sagemaker-emulator", "serve"]
