# Agensium API / worker image: `agensium api`, `agensium worker`, `agensium migrate`.
# No secret is baked in: `agensium api` refuses to start without AGENSIUM_SECRET_KEY in its environment
# (docker-compose.yml takes it from .env).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # The source tree wins over the installed copy: sql/ (migrations, queries) lives beside the packages.
    PYTHONPATH=/app

RUN groupadd --system agensium && useradd --system --gid agensium --home-dir /app --shell /usr/sbin/nologin agensium

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml constraints.txt ./
RUN mkdir service worker agents && touch service/__init__.py worker/__init__.py agents/__init__.py \
    && pip install -c constraints.txt . && pip uninstall -y agensium && rm -rf service worker agents build *.egg-info

COPY service ./service
COPY worker ./worker
COPY agents ./agents
COPY sql ./sql
RUN pip install --no-deps . && rm -rf build *.egg-info

USER agensium
EXPOSE 8000
CMD ["agensium", "api", "--host", "0.0.0.0", "--port", "8000"]
