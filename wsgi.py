"""What gunicorn and `flask --app wsgi` load."""
from web import create_app

app = create_app()
