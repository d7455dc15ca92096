"""gunicorn reads this file from the folder it is started in, in its master process, before any worker.

Checking the environment here means a portal that may not start (no PORTAL_SECRET_KEY, a short one, a bad
setting) stops at once with one line on stderr, instead of each worker failing and being started again.
Options given on gunicorn's command line apply as usual; this file sets none.
"""
from portal.cli import check_environment

check_environment()
