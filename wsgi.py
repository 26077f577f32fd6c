"""What gunicorn and `flask --app wsgi` load."""
from werkzeug.middleware.proxy_fix import ProxyFix

from web import create_app

app = create_app()
if app.config["PROXY_HOPS"]:
    # Behind nginx the client's address (login limits per address) and https (Secure cookie, HSTS) come in
    # X-Forwarded-*; trust exactly as many hops as there are proxies, so a client cannot forge them.
    hops = app.config["PROXY_HOPS"]
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
