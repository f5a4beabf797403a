# Align in a container: `docker build -t align .` then `docker run --env-file .env align`
# (README, "Deploy"). The image runs `align serve` as a non-root user; `align migrate`,
# `align doctor` and the other commands are the same image with another command.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ALIGN_PORT=3000
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/align --create-home align
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER align
WORKDIR /var/lib/align
EXPOSE 3000
# /healthz answers 200 once the database answers; python is all the slim image has to ask it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ALIGN_PORT', '3000'), timeout=4)"]
# SIGTERM (docker stop) is a graceful stop within ALIGN_SHUTDOWN_GRACE (default 20 s); give
# `docker stop --time` / compose's stop_grace_period a little more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["align"]
CMD ["serve"]
