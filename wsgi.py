"""WSGI entry point: ``gunicorn -w 4 -b 0.0.0.0:8000 wsgi:app``. Configuration comes from the environment."""
from portal.cli import app_from_environment

app = app_from_environment()
