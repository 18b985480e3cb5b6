"""The Celery app: configured from Django settings (CELERY_* names), tasks found per app."""

import os

from celery import Celery

from config.logs import connect_task_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
connect_task_logging()
