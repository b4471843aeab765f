"""HTTP/1.1 serving: requests, responses and the server that carries them."""

from .limits import ServerLimits
from .messages import Answer, Request, Responder, Response, StreamingResponse, json_response
from .server import Handler, HttpServer

__all__ = [
    "Answer",
    "Handler",
    "HttpServer",
    "Request",
    "Responder",
    "Response",
    "ServerLimits",
    "StreamingResponse",
    "json_response",
]
