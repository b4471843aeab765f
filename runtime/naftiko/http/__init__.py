"""HTTP/1.1 serving: requests, responses and the server that carries them."""

from .messages import Request, Response, json_response
from .server import Handler, HttpServer

__all__ = ["Handler", "HttpServer", "Request", "Response", "json_response"]
