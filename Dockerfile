# One image for web and workers; GPU nodes add the CUDA runtime through the NVIDIA container toolkit.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production \
    FINELINE_VAR_DIR=/var/lib/fineline
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN mkdir -p /var/lib/fineline \
 && DJANGO_SECRET_KEY=build-only-collectstatic-key-0123456789-0123456789-0123456789 python manage.py collectstatic --noinput
EXPOSE 8000
# Sync workers: serve them behind a buffering proxy only (docker-compose.yml's nginx; see deploy/gunicorn.conf.py).
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi:application"]
