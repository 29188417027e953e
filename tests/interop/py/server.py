"""The interop lane's second peer: an OAuth 2 token endpoint built from Authlib's own server
classes (no web framework), on 127.0.0.1 and a free port.

It implements, with Authlib's classes and extension points:
  - the JWT-bearer grant (RFC 7523 §2.1): `JWTBearerGrant`, the issuer's registered public key,
    replayed `jti` refused (Authlib leaves replay checks to the server; RFC 7523 §3 item 7);
  - client authentication by signed assertions (RFC 7523 §2.2): `JWTBearerClientAssertion`
    registered as `client_secret_jwt` and `private_key_jwt`, replayed `jti` refused;
  - the client credentials grant, with each client's one registered method (so a Basic attempt
    by a client registered for `client_secret_post` is refused with `invalid_client`);
  - token exchange (RFC 8693), a grant class registered with `register_grant`;
  - GET /api, a protected resource that accepts the tokens it issued.

Usage: python server.py CONFIG.json. It prints `listening http://127.0.0.1:PORT` once ready,
and exits when its standard input closes (the test process ended).
The config: {"clients": [{"client_id", "client_secret"?, "public_key"? (PEM),
"auth_method", "grant_types": [...]}], "users": [...]}.
"""

import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from joserfc.jwk import ECKey, OctKey, RSAKey
from joserfc import jws

from authlib.common.encoding import json_loads
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    BaseGrant,
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    TokenEndpointMixin,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion, JWTBearerGrant

# Plain http on loopback: the test's own peer.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

LOCK = threading.Lock()
TOKENS = {}  # access token -> {client_id, sub, scope, exp, aud}
SEEN_JTI = set()  # (issuer, jti) of every assertion accepted


def remember_jti(iss, jti):
    """False when (iss, jti) was seen before: a replayed assertion."""
    with LOCK:
        if (iss, jti) in SEEN_JTI:
            return False
        SEEN_JTI.add((iss, jti))
        return True


class Client(ClientMixin):
    def __init__(self, c):
        self.client_id = c["client_id"]
        self.client_secret = c.get("client_secret")
        self.public_key = c.get("public_key")
        self.auth_method = c["auth_method"]
        self.grant_types = c.get("grant_types", [])

    def get_client_id(self):
        return self.client_id

    def get_allowed_scope(self, scope):
        return scope or ""

    def check_client_secret(self, client_secret):
        return self.client_secret is not None and secrets.compare_digest(
            self.client_secret, client_secret
        )

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.auth_method

    def check_grant_type(self, grant_type):
        return grant_type in self.grant_types

    def key(self):
        if self.public_key:
            pem = self.public_key.encode()
            try:
                return RSAKey.import_key(pem)
            except Exception:  # not RSA: EC
                return ECKey.import_key(pem)
        return OctKey.import_key(self.client_secret.encode())


class Request(OAuth2Request):
    def __init__(self, method, uri, headers, form):
        super().__init__(method, uri, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def args(self):
        return {}

    @property
    def form(self):
        return self._form


class Server(AuthorizationServer):
    def __init__(self, clients, token_url, issuer):
        super().__init__()
        self.clients = clients
        self.token_url = token_url
        self.issuer = issuer

    def query_client(self, client_id):
        return self.clients.get(client_id)

    def save_token(self, token, request):
        with LOCK:
            TOKENS[token["access_token"]] = {
                "client_id": request.client.client_id if request.client else None,
                "sub": request.user.get("sub") if isinstance(request.user, dict) else None,
                "scope": token.get("scope", ""),
                "exp": time.time() + token["expires_in"],
            }

    def create_oauth2_request(self, request):
        return request

    def handle_response(self, status, body, headers):
        return status, body, headers

    def send_signal(self, name, *args, **kwargs):
        pass


def generate_token(grant_type, client, user=None, scope=None, expires_in=None,
                   include_refresh_token=True):
    return {
        "access_token": "py-" + secrets.token_urlsafe(24),
        "token_type": "Bearer",
        "expires_in": expires_in or 3600,
        "scope": scope or "",
    }


class ClientAssertion(JWTBearerClientAssertion):
    """`client_secret_jwt` or `private_key_jwt`, for the clients registered with that method."""

    def __init__(self, method, server):
        super().__init__(validate_jti=True)
        self.CLIENT_AUTH_METHOD = method
        self.server = server

    def __call__(self, query_client, request):
        assertion = request.form.get("client_assertion")
        if not assertion:
            return None
        try:
            claims = json_loads(jws.extract_compact(assertion.encode()).payload)
            client = query_client(claims.get("sub"))
        except Exception:
            client = None
        # Another method's client: let that method answer.
        if client is not None and client.auth_method != self.CLIENT_AUTH_METHOD:
            return None
        return super().__call__(query_client, request)

    def get_audiences(self):
        return [self.server.token_url, self.server.issuer]

    def validate_jti(self, claims, jti):
        return remember_jti(claims["iss"], jti)

    def resolve_client_public_key(self, client):
        return client.key()


class JWTBearer(JWTBearerGrant):
    """RFC 7523 §2.1: the assertion's issuer is a registered client, its key the client's."""

    USERS = set()

    def resolve_issuer_client(self, issuer):
        client = self.server.query_client(issuer)
        if client is not None and client.public_key:
            return client
        return None

    def resolve_client_public_key(self, client):
        return client.key()

    def authenticate_user(self, subject):
        # A registered user, or the client itself (a service account acting as itself).
        client = self.request.client
        if subject in self.USERS or (client is not None and subject == client.client_id):
            return {"sub": subject}
        return None

    def has_granted_permission(self, client, user):
        return True

    def get_audiences(self):
        return [self.server.token_url, self.server.issuer]

    def verify_claims(self, claims):
        super().verify_claims(claims)
        jti = claims.get("jti")
        if not jti:
            raise InvalidGrantError(description="Missing JWT ID.")
        if not remember_jti(claims["iss"], jti):
            raise InvalidGrantError(description="JWT ID is used before.")


ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class TokenExchange(BaseGrant, TokenEndpointMixin):
    """RFC 8693 §2: a token this server issued, exchanged for one for another audience."""

    GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
    TOKEN_ENDPOINT_AUTH_METHODS = [
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
    ]

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError()
        form = self.request.form
        subject_token = form.get("subject_token")
        if not subject_token:
            raise InvalidRequestError("Missing 'subject_token'")
        if form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError("Unsupported 'subject_token_type'")
        if form.get("actor_token") and not form.get("actor_token_type"):
            raise InvalidRequestError("'actor_token_type' is required with 'actor_token'")
        with LOCK:
            subject = TOKENS.get(subject_token)
        if subject is None or subject["exp"] < time.time():
            raise InvalidGrantError(description="The subject token is not active.")
        self.request.client = client
        self.request.user = {"sub": subject["sub"] or subject["client_id"]}

    def create_token_response(self):
        token = self.generate_token(
            scope=self.request.form.get("scope"),
            user=self.request.user,
            include_refresh_token=False,
        )
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.save_token(token)
        with LOCK:
            TOKENS[token["access_token"]]["aud"] = self.request.payload.datalist.get("audience", [])
        return 200, token, self.TOKEN_RESPONSE_HEADER


class Credentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
    ]


def make_server(config, port_holder):
    clients = {c["client_id"]: Client(c) for c in config["clients"]}
    server = Server(clients, "", "")
    server.register_token_generator("default", generate_token)
    server.register_client_auth_method("client_secret_jwt", ClientAssertion("client_secret_jwt", server))
    server.register_client_auth_method("private_key_jwt", ClientAssertion("private_key_jwt", server))
    JWTBearer.USERS = set(config.get("users", []))
    server.register_grant(JWTBearer)
    server.register_grant(Credentials)
    server.register_grant(TokenExchange)
    return server


class Handler(BaseHTTPRequestHandler):
    server_version = "authlib-peer"

    def log_message(self, fmt, *args):
        sys.stderr.write("peer: " + (fmt % args) + "\n")

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            if name.lower() not in ("content-type", "content-length"):
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        pairs = parse_qsl(body, keep_blank_values=True)
        form = {}
        for k, v in pairs:
            form.setdefault(k, v)
        if self.path != "/token":
            return self.reply(404, {"error": "not_found"})
        oauth = self.server.oauth
        request = Request("POST", oauth.token_url, self.headers, form)
        request.payload._datalist = {}
        for k, v in pairs:
            request.payload._datalist.setdefault(k, []).append(v)
        status, payload, headers = oauth.create_token_response(request)
        self.reply(status, payload, headers)

    def do_GET(self):
        if self.path != "/api":
            return self.reply(404, {"error": "not_found"})
        auth = self.headers.get("Authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with LOCK:
            found = TOKENS.get(token)
        if found is None or found["exp"] < time.time():
            return self.reply(401, {"error": "invalid_token"}, [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        self.reply(200, {"active": True, **found})


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    oauth = make_server(config, port)
    oauth.issuer = f"http://127.0.0.1:{port}"
    oauth.token_url = f"http://127.0.0.1:{port}/token"
    httpd.oauth = oauth

    # The test process holds our stdin: when it exits, so does the peer.
    def watch_stdin():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"listening http://127.0.0.1:{port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
