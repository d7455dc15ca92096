"""Flask extensions as module globals, bound to an app in ``create_app`` (the microblog pattern)."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx

csrf = CSRFProtect()
login_manager = LoginManager()
htmx = Htmx()
# No default limits: only the routes that need one (login) declare it.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
