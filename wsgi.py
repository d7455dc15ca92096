"""WSGI entry point: ``gunicorn -w 4 -b 127.0.0.1:8000 wsgi:app``, run from this folder so gunicorn reads
``gunicorn.conf.py`` (which checks the configuration before any worker starts). Configuration comes from the
environment."""
from portal.cli import app_from_environment

app = app_from_environment()
