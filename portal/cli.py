"""The ``portal`` command: demo, database migrations and (later) the billing worker."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .config import ConfigError, load_settings


@click.group()
def main():
    """Billing portal command line."""


@main.command()
@click.option("--port", default=5000, show_default=True, help="Port to serve on (127.0.0.1 only).")
@click.option("--instance", "instance_path", default=None, help="Folder for the demo database and e-mails.")
@click.option("--reset", is_flag=True, help="Delete the demo database first.")
def demo(port: int, instance_path: str | None, reset: bool):
    """Create or migrate a local SQLite database, seed the demo data and serve the portal."""
    from werkzeug.serving import run_simple

    from . import create_app
    from .db import Database
    from .demo import DEMO_LOGINS, DEMO_PASSWORD, seed
    from .models import utcnow

    settings = load_settings(demo=True, overrides={"instance_path": instance_path} if instance_path else None)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    if reset and settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    database = Database(settings.database_url)
    database.upgrade()
    app = create_app(settings, database=database)
    with app.app_context(), database.session() as session:
        created = seed(session, app.extensions["portal.gateway"], today=utcnow().date())
    url = f"http://127.0.0.1:{port}/"
    click.echo(f"Billing portal demo ({'new data' if created else 'existing data'}; database {database.url})")
    click.echo(f"Open {url} and log in with password '{DEMO_PASSWORD}' as:")
    for email, who in DEMO_LOGINS:
        click.echo(f"  {email:24} ({who})")
    click.echo("Test mode: the sandbox processor is used; no real card is charged. Press Ctrl+C to stop.")
    run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)


@main.group()
def db():
    """Database schema commands."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str):
    """Apply migrations up to REVISION (default: the newest)."""
    from .db import Database

    try:
        settings = load_settings(demo=True) if not _has_secret() else load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    Database(settings.database_url).upgrade(revision)
    click.echo(f"Database at {settings.database_url.split('@')[-1]} is at {revision}.")


def _has_secret() -> bool:
    import os

    return bool(os.environ.get("PORTAL_SECRET_KEY"))


def app_from_environment():
    """The WSGI app for gunicorn: refuses to start without PORTAL_SECRET_KEY."""
    from . import create_app

    try:
        return create_app(load_settings())
    except ConfigError as exc:
        sys.exit(f"portal: {exc}")


if __name__ == "__main__":
    main()
