"""Who may call an exposure: the one check every adapter goes through (`guard`), and OAuth 2.1
resource-server authentication (RFC 9068 JWTs checked against the authorization server's keys,
RFC 8414 discovery, RFC 9728 protected-resource metadata, RFC 6750 challenges).

The static schemes (bearer, apikey, basic) stay in `exposes/server_auth.py`; a check is anything
with `check(request)` answering a refusal or None, synchronously or not (`CallerAuth`).
"""

from .guard import CallerAuth, every, guard
from .resource_server import ResourceServer

__all__ = ["CallerAuth", "ResourceServer", "every", "guard"]
