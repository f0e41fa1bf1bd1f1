# Overdue Advisor: the webhook server (see docs/deploy.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOST=0.0.0.0 \
    PORT=8080

WORKDIR /app

# Dependencies first, from the lock file alone (exact versions, checked by hash), so
# editing the source or the dialogs reuses this layer instead of reinstalling everything.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

# A user without a login or a password; only the data folder is writable to it.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin advisor \
    && mkdir -p /app/data \
    && chown advisor /app/data

COPY bot ./bot
COPY dialogs ./dialogs
COPY locales ./locales

USER 10001
# SQLite's file lives here (DATABASE_URL=sqlite:///data/bot.sqlite3): mount a volume.
VOLUME ["/app/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "bot.web.healthcheck"]

# Exec form: the bot is PID 1 and receives SIGTERM itself for a graceful stop.
CMD ["python", "-m", "bot", "webhook"]
