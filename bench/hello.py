"""The baseline for bench/serve.py: a bare Flask app on the same gunicorn settings."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "hello"
