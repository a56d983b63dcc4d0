"""Celery tasks of the telephony integration (registered through CELERY_IMPORTS)."""
