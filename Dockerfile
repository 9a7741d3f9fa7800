# One image for every pyramid command; by default it runs `pyramid worker` (see README "Running on
# a cluster"). CPU torch by default; for NVIDIA GPUs build with the CUDA wheel index of your CUDA
# version, e.g. --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 (see pytorch.org).
#   docker build -t knowledge-pyramid .
#   docker run --rm knowledge-pyramid --help
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PYRAMID_DATA_DIR=/data

WORKDIR /app
# torch first, from the chosen index: a plain `pip install` would pull the multi-GB CUDA build.
RUN pip install --index-url "${TORCH_INDEX}" torch==2.13.0
COPY pyproject.toml README.md ./
COPY pyramid ./pyramid
RUN pip install . && useradd --create-home pyramid && mkdir -p /data && chown pyramid /data
USER pyramid

ENTRYPOINT ["pyramid"]
CMD ["worker"]
