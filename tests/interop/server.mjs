// Dev-only OAuth 2 / OIDC peer for specauth interop tests, built on the
// `oidc-provider` npm package (version pinned exactly in package.json).
//
// NEVER use this configuration for anything but local tests: plain http,
// hard-coded client secrets, a cookie key in the source, in-memory storage,
// login accepts any user name without a password.
//
// Contract with a test harness:
//   * env PORT (default 0 = pick a free port); listens on 127.0.0.1 only.
//   * env DEVICE_CODE_TTL (default 120 s) shortens device codes for expiry tests.
//   * stdout carries exactly one line, `READY http://127.0.0.1:<port>`, once the
//     server accepts connections; that URL is the issuer. With MTLS_DIR the line
//     is `READY http://127.0.0.1:<port> https://127.0.0.1:<mtls-port>`. Everything
//     else goes to stderr (set INTEROP_LOG=1 for one line per request).
//   * env MTLS_DIR (optional): a folder with ca.pem (the CA whose client
//     certificates are verified), server.pem + server-key.pem (the https
//     listener's certificate for 127.0.0.1) and self-signed.pem (the certificate
//     registered for self_signed_tls_client_auth). Turns on RFC 8705: a second,
//     https listener on 127.0.0.1 asks for client certificates, discovery lists
//     it as mtls_endpoint_aliases, and two clients authenticate by certificate.
//   * exits 0 on SIGTERM / SIGINT, when stdin (if it is a pipe or socket)
//     reaches EOF, and when the parent process goes away (re-parenting).
//
// Scripted user interaction (no browser needed) -- see README.md for details:
//   GET  /interaction/:uid               tiny HTML page (prompt name, forms)
//   POST /interaction/:uid/login         form login=<user>
//   POST /interaction/:uid/confirm       grants what the consent prompt asks for
//   POST /interaction/:uid/abort         ends the request with access_denied
//   GET  /interaction/:uid/auto?user=alice[&decision=deny]
//                                        login + consent in one step, 303 onwards
//   POST /device/auto                    form user_code, user, decision=approve|deny

import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import crypto from 'node:crypto';

// oidc-provider prints notices with console.info (stdout); stdout is reserved
// for the READY line, so route every console method to stderr before loading it.
for (const m of ['log', 'info', 'debug']) console[m] = (...args) => console.error(...args);

const { default: Provider, errors } = await import('oidc-provider');

const LOG = process.env.INTEROP_LOG === '1';
const log = (...args) => console.error('[interop]', ...args);

// Resource server used for client_credentials and for api:* scopes.
const API_RESOURCE = 'urn:specauth:api';
const API_SCOPES = ['api:read', 'api:write'];
const OIDC_SCOPES = ['openid', 'offline_access'];
// An MCP server of the interop lane (mcp.mjs) on 127.0.0.1: its URL is its resource indicator.
const MCP_RESOURCE = /^http:\/\/127\.0\.0\.1:\d+\/mcp(-admin)?$/;
const MCP_SCOPES = ['mcp:tools', 'mcp:admin'];
const scopesOf = (resource) => (MCP_RESOURCE.test(resource) ? MCP_SCOPES : API_SCOPES);

// ---------------------------------------------------------------------------
// listen first: the issuer must contain the actual port.
const server = http.createServer();
let handler = (req, res) => { res.statusCode = 503; res.end('starting'); };
server.on('request', (req, res) => handler(req, res));

const requestedPort = Number.parseInt(process.env.PORT ?? '0', 10) || 0;
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(requestedPort, '127.0.0.1', resolve);
});
const { port } = server.address();
const ISSUER = `http://127.0.0.1:${port}`;

// RFC 8705: the same provider behind an https listener that asks for a client certificate.
// Certificates from other CAs (or none) still reach the provider, which refuses them as
// invalid_client: a self-signed certificate is the credential of self_signed_tls_client_auth.
const MTLS_DIR = process.env.MTLS_DIR;
let MTLS_ORIGIN;
let mtlsServer;
const mtlsFile = (name) => fs.readFileSync(`${MTLS_DIR}/${name}`);
if (MTLS_DIR) {
  mtlsServer = https.createServer({
    key: mtlsFile('server-key.pem'),
    cert: mtlsFile('server.pem'),
    ca: mtlsFile('ca.pem'),
    requestCert: true,
    rejectUnauthorized: false,
  });
  mtlsServer.on('request', (req, res) => handler(req, res));
  await new Promise((resolve, reject) => {
    mtlsServer.once('error', reject);
    mtlsServer.listen(0, '127.0.0.1', resolve);
  });
  MTLS_ORIGIN = `https://127.0.0.1:${mtlsServer.address().port}`;
}
// The mTLS clients' tokens are JWTs, so their `cnf` can be read.
const MTLS_RESOURCE = 'urn:specauth:mtls-api';
const MTLS_SUBJECT_DN = 'CN=specauth-mtls-client';

// ---------------------------------------------------------------------------
// provider configuration
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-rs256', alg: 'RS256', use: 'sig' };

const clients = [
  {
    client_id: 'basic-client',
    client_secret: 'basic-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    // native => any port on the loopback redirect URI is accepted (RFC 8252 7.3)
    application_type: 'native',
    grant_types: [
      'authorization_code',
      'refresh_token',
      'client_credentials',
      'urn:ietf:params:oauth:grant-type:device_code',
    ],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
  },
  {
    client_id: 'post-client',
    client_secret: 'post-secret',
    token_endpoint_auth_method: 'client_secret_post',
    application_type: 'native',
    grant_types: ['client_credentials', 'refresh_token', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
  },
  {
    // RFC 9126: this client's authorization requests must be pushed first.
    client_id: 'par-client',
    client_secret: 'par-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    require_pushed_authorization_requests: true,
  },
  {
    client_id: 'public-client',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    grant_types: [
      'authorization_code',
      'refresh_token',
      'urn:ietf:params:oauth:grant-type:device_code',
    ],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
  },
];

if (MTLS_DIR) {
  const selfSigned = new crypto.X509Certificate(mtlsFile('self-signed.pem'));
  const mtlsClient = {
    application_type: 'native',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    tls_client_certificate_bound_access_tokens: true,
  };
  clients.push(
    { ...mtlsClient, client_id: 'mtls-pki-client', token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: MTLS_SUBJECT_DN },
    { ...mtlsClient, client_id: 'mtls-self-signed-client', token_endpoint_auth_method: 'self_signed_tls_client_auth',
      jwks: { keys: [{ ...selfSigned.publicKey.export({ format: 'jwk' }), x5c: [selfSigned.raw.toString('base64')] }] } },
  );
}
// Clients that sign a client assertion (RFC 7523 §2.2): private_key_jwt with RS256 and ES256
// keys made here for this run (their private halves written beside the mTLS files for the
// tests, never anywhere else), and client_secret_jwt (HS256).
if (MTLS_DIR) {
  const keyPair = (type, options) => crypto.generateKeyPairSync(type, options);
  const writeKey = (name, key) => fs.writeFileSync(`${MTLS_DIR}/${name}`,
    key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const rsa = keyPair('rsa', { modulusLength: 2048 });
  const ec = keyPair('ec', { namedCurve: 'P-256' });
  const stranger = keyPair('rsa', { modulusLength: 2048 });
  writeKey('jwt-rs256.pem', rsa.privateKey);
  writeKey('jwt-es256.pem', ec.privateKey);
  writeKey('jwt-stranger.pem', stranger.privateKey);
  const jwtClient = {
    application_type: 'native',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  };
  const jwk = (key, kid, alg) => ({ ...key.export({ format: 'jwk' }), kid, alg, use: 'sig' });
  clients.push(
    { ...jwtClient, client_id: 'jwt-rs256-client', token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'RS256', jwks: { keys: [jwk(rsa.publicKey, 'rs-1', 'RS256')] } },
    { ...jwtClient, client_id: 'jwt-es256-client', token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [jwk(ec.publicKey, 'es-1', 'ES256')] } },
    { ...jwtClient, client_id: 'jwt-secret-client', token_endpoint_auth_method: 'client_secret_jwt',
      token_endpoint_auth_signing_alg: 'HS256',
      client_secret: 'jwt-secret-0123456789abcdef0123456789abcdef' },
  );
}
// The client certificate of an https request, when it sent one.
const peerCertificate = (ctx) => {
  const raw = ctx.socket?.getPeerCertificate?.()?.raw;
  return raw ? new crypto.X509Certificate(raw) : undefined;
};

const requestedScopes = (ctx) => new Set(String(ctx.oidc.params?.scope ?? '').split(' ').filter(Boolean));

const html = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${title}</title></head>
<body>${body}</body></html>`;
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const provider = new Provider(ISSUER, {
  clients,
  jwks: { keys: [signingJwk] },
  cookies: {
    // dev-only fixed key; cookies are not `secure` because the issuer is http
    keys: ['specauth-interop-dev-only-cookie-key'],
  },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id }),
  }),
  interactions: {
    // With `login_hint=<user>` on the authorization request the user agent is
    // sent straight to the one-step /auto route, so a client that just follows
    // redirects with a cookie jar ends at its redirect_uri.
    url: (ctx, interaction) => {
      const hint = interaction.params?.login_hint;
      return hint
        ? `/interaction/${interaction.uid}/auto?user=${encodeURIComponent(hint)}`
        : `/interaction/${interaction.uid}`;
    },
  },
  pkce: {
    // PKCE (S256 is the only method oidc-provider 9 supports) for every client
    required: () => true,
  },
  // Always issue a refresh token to clients allowed the refresh_token grant
  // (no offline_access needed) ...
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  // ... and rotate on every use; re-use of a rotated one is invalid_grant.
  rotateRefreshToken: () => true,
  // Tokens do not die with the browser session cookie.
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: 300,
    ClientCredentials: 300,
    RefreshToken: 3600,
    // DEVICE_CODE_TTL (seconds) exists only so tests can observe expired_token quickly
    DeviceCode: Number.parseInt(process.env.DEVICE_CODE_TTL ?? '', 10) || 120,
    AuthorizationCode: 60,
    IdToken: 300,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  clientBasedCORS: () => false,
  clientAuthMethods: [
    'client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'private_key_jwt', 'none',
    ...(MTLS_DIR ? ['tls_client_auth', 'self_signed_tls_client_auth'] : []),
  ],
  discovery: MTLS_DIR ? {
    mtls_endpoint_aliases: {
      token_endpoint: `${MTLS_ORIGIN}/token`,
      revocation_endpoint: `${MTLS_ORIGIN}/token/revocation`,
      introspection_endpoint: `${MTLS_ORIGIN}/token/introspection`,
    },
  } : {},
  features: {
    mTLS: {
      enabled: Boolean(MTLS_DIR),
      certificateBoundAccessTokens: true,
      tlsClientAuth: true,
      selfSignedTlsClientAuth: true,
      getCertificate: peerCertificate,
      // Verified against ca.pem by the TLS layer.
      certificateAuthorized: (ctx) => ctx.socket?.authorized === true,
      // Only the subject DN is registered here; Node writes it one attribute a line.
      certificateSubjectMatches: (ctx, property, expected) => property === 'tls_client_auth_subject_dn'
        && peerCertificate(ctx)?.subject.split('\n').join(',') === expected,
    },
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // same as the library default, written out to silence its notice
      allowedPolicy: async (ctx, client, token) => !(
        client.clientAuthMethod === 'none' && token.clientId !== ctx.oidc.client.clientId
      ),
    },
    revocation: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => {
        if (token.clientId !== client.clientId) {
          if (client.clientAuthMethod === 'none') return false;
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        }
        return true;
      },
    },
    deviceFlow: {
      enabled: true,
      // Minimal pages; the <meta name="interop-*"> tags make them scriptable.
      userCodeInputSource: async (ctx, form, out, err) => {
        ctx.body = html('Device sign-in', `<meta name="interop-device" content="${esc(err ? err.name || 'error' : 'input')}">
<p>${err ? esc(err.message) : 'Enter the code displayed on your device'}</p>${form}
<button type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      userCodeConfirmSource: async (ctx, form, client, deviceInfo, userCode) => {
        ctx.body = html('Confirm device', `<meta name="interop-device" content="confirm">
<p>${esc(client.clientId)} / <code>${esc(userCode)}</code></p>${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>`);
      },
      successSource: async (ctx) => {
        ctx.body = html('Device sign-in success', '<meta name="interop-device" content="success"><p>Sign-in successful.</p>');
      },
    },
    // RFC 9449 with server nonces: every first DPoP proof is answered use_dpop_nonce.
    dPoP: {
      enabled: true,
      nonceSecret: crypto.randomBytes(32),
      requireNonce: () => true,
    },
    pushedAuthorizationRequests: { enabled: true },
    // RFC 7591, open (no initial access token): MCP clients register themselves.
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A resource is implied for client_credentials and whenever api:* scopes
      // are requested, so clients need not send `resource=` at all.
      defaultResource: async (ctx, client, oneOf) => {
        if (oneOf) return oneOf;
        if (ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials') {
          return client.clientId.startsWith('mtls-') ? MTLS_RESOURCE : API_RESOURCE;
        }
        for (const s of requestedScopes(ctx)) if (API_SCOPES.includes(s)) return API_RESOURCE;
        return undefined;
      },
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (MCP_RESOURCE.test(resourceIndicator)) {
          return {
            scope: MCP_SCOPES.join(' '),
            audience: resourceIndicator,
            accessTokenTTL: 300,
            accessTokenFormat: 'opaque',
          };
        }
        if (resourceIndicator === MTLS_RESOURCE) {
          return {
            scope: API_SCOPES.join(' '),
            audience: MTLS_RESOURCE,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
          };
        }
        if (resourceIndicator !== API_RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: API_SCOPES.join(' '),
          audience: API_RESOURCE,
          accessTokenTTL: 300,
          accessTokenFormat: 'opaque',
        };
      },
      useGrantedResource: async () => false,
    },
  },
});

// RFC 8628 says clients default to a 5 s polling interval when the device
// authorization response has none; oidc-provider does not emit `interval`
// (and does not enforce slow_down), so add `interval: 1` to keep tests fast.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200
      && ctx.body && typeof ctx.body === 'object' && ctx.body.device_code) {
    ctx.body.interval = 1;
  }
});

// RFC 8705 §3 binds the token to the certificate in the token itself (the JWT's `cnf`) and in
// introspection; the token reply carries no `cnf`. Echo the issued token's own `cnf` there too,
// so a client's handling of one in a reply (specauth keeps it as an extra) meets the real
// binding.
provider.use(async (ctx, next) => {
  await next();
  const token = ctx.oidc?.route === 'token' && ctx.status === 200 ? ctx.body?.access_token : undefined;
  if (typeof token === 'string' && token.split('.').length === 3) {
    try {
      const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
      if (claims.cnf) ctx.body.cnf = claims.cnf;
    } catch { /* not a JWT after all */ }
  }
});

provider.on('server_error', (ctx, err) => log('server_error', ctx?.path, err));
if (LOG) {
  // error_detail is the (not sent) reason behind a generic error_description
  for (const ev of ['grant.error', 'authorization.error', 'introspection.error', 'revocation.error', 'device_authorization.error']) {
    provider.on(ev, (ctx, err) => log(ev, err.error, err.error_description, err.error_detail ?? ''));
  }
}

// ---------------------------------------------------------------------------
// helpers for our own routes
async function readForm(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}
const sendJson = (res, status, obj) => send(res, status, JSON.stringify(obj), 'application/json; charset=utf-8');

// Grant everything the interaction asks for (scopes, claims, resource scopes).
async function grantAll(details, accountId) {
  const { params, prompt } = details;
  let grant;
  if (details.grantId) grant = await provider.Grant.find(details.grantId);
  if (!grant || grant.accountId !== accountId) {
    grant = new provider.Grant({ accountId, clientId: params.client_id });
  }
  const scopes = String(params.scope ?? '').split(' ').filter(Boolean);
  const oidc = scopes.filter((s) => OIDC_SCOPES.includes(s));
  if (oidc.length) grant.addOIDCScope(oidc.join(' '));
  const d = prompt?.details ?? {};
  if (d.missingOIDCScope?.length) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims?.length) grant.addOIDCClaims(d.missingOIDCClaims);
  if (d.missingResourceScopes) {
    for (const [indicator, s] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(indicator, s.join(' '));
  }
  // login step: prompt details do not list resource scopes yet, so pre-grant them
  const resources = params.resource ? [].concat(params.resource) : [];
  const rs = scopes.filter((s) => API_SCOPES.includes(s));
  if (rs.length && !resources.includes(API_RESOURCE)) resources.push(API_RESOURCE);
  for (const r of resources) {
    const granted = scopes.filter((s) => scopesOf(r).includes(s));
    if (granted.length) grant.addResourceScope(r, granted.join(' '));
  }
  if (params.claims) {
    try {
      const c = JSON.parse(params.claims);
      const names = [...Object.keys(c.userinfo ?? {}), ...Object.keys(c.id_token ?? {})];
      if (names.length) grant.addOIDCClaims(names);
    } catch { /* ignore malformed claims param; provider rejected it already */ }
  }
  return grant.save();
}

async function interactionRoute(req, res, url, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    return send(res, 400, html('Interaction error', `<p>${esc(err.error_description || err.message)}</p>`));
  }
  if (details.uid !== uid) return send(res, 400, html('Interaction error', '<p>interaction uid mismatch</p>'));
  const { prompt, params } = details;
  const accountId = details.session?.accountId;

  if (action === '' && req.method === 'GET') {
    // An /auto run whose one-step grant did not satisfy everything lands here
    // again; keep following automatically.
    const auto = details.lastSubmission?.interopAutoUser;
    if (auto) {
      res.statusCode = 303;
      res.setHeader('Location', `/interaction/${uid}/auto?user=${encodeURIComponent(auto)}`);
      return res.end();
    }
    return send(res, 200, html(`Interaction: ${prompt.name}`, `<meta name="interop-prompt" content="${esc(prompt.name)}">
<p>client: ${esc(params.client_id)}; prompt: ${esc(prompt.name)}; reasons: ${esc(prompt.reasons.join(','))}; scope: ${esc(params.scope ?? '')}</p>
${prompt.name === 'login'
    ? `<form method="post" action="/interaction/${uid}/login"><input name="login" value="alice"><button>Sign in</button></form>`
    : `<form method="post" action="/interaction/${uid}/confirm"><button>Allow</button></form>`}
<form method="post" action="/interaction/${uid}/abort"><button>Cancel</button></form>
<p><a href="/interaction/${uid}/auto?user=alice">auto (alice)</a></p>`));
  }

  if (action === 'login' && req.method === 'POST') {
    const form = await readForm(req);
    const login = form.get('login');
    if (!login) return send(res, 400, html('Interaction error', '<p>missing login</p>'));
    if (prompt.name !== 'login') return send(res, 400, html('Interaction error', `<p>prompt is ${esc(prompt.name)}, not login</p>`));
    return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  }

  if (action === 'confirm' && req.method === 'POST') {
    await readForm(req);
    if (prompt.name !== 'consent') return send(res, 400, html('Interaction error', `<p>prompt is ${esc(prompt.name)}, not consent</p>`));
    const grantId = await grantAll(details, accountId);
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  if (action === 'abort' && (req.method === 'POST' || req.method === 'GET')) {
    if (req.method === 'POST') await readForm(req);
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  if (action === 'auto' && req.method === 'GET') {
    const user = url.searchParams.get('user') || 'alice';
    if (url.searchParams.get('decision') === 'deny') {
      return provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'End-User denied the request',
      }, { mergeWithLastSubmission: false });
    }
    const result = { interopAutoUser: user };
    let who = accountId;
    if (prompt.name === 'login') {
      result.login = { accountId: user };
      who = user;
    }
    result.consent = { grantId: await grantAll(details, who) };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  }

  return send(res, 404, html('Not found', '<p>unknown interaction action</p>'));
}

// --- device approval without a browser --------------------------------------
// POST /device/auto (form: user_code, user, decision=approve|deny) drives the
// provider's own user-code pages over loopback HTTP with a private cookie jar,
// exactly like a browser would:
//   1. GET  /device                       -> xsrf token (+ _session cookie)
//   2. POST /device  xsrf,user_code,confirm=yes  (or abort=yes for deny)
//        deny:    the provider marks the device code access_denied; done.
//        approve: 303 -> /interaction/<uid>
//   3. GET  /interaction/<uid>/auto?user=<user>   (our one-step login+consent)
//        303 -> /device/<uid> (device_resume), followed until a non-redirect
//   4. the DeviceCode model is read back to report the real outcome.
// Replies JSON: 200 {"status":"approved"|"denied","user_code":..}, or
// 400 {"error":"invalid_request"|"not_found"|"expired"|"already_used"|"failed", "error_description":..}.
function makeJar() {
  const cookies = new Map(); // name -> { value, path }
  return {
    store(res) {
      for (const line of res.headers.getSetCookie()) {
        const [pair, ...attrs] = line.split(';').map((s) => s.trim());
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq);
        const value = pair.slice(eq + 1);
        let path = '/';
        let expired = false;
        for (const a of attrs) {
          const [k, v = ''] = a.split('=');
          if (k.toLowerCase() === 'path') path = v || '/';
          if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
          if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
        }
        const key = `${name}\u0000${path}`;
        if (expired || value === '') cookies.delete(key); else cookies.set(key, { name, value, path });
      }
    },
    header(pathname) {
      return [...cookies.values()]
        .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/')
        .map((c) => `${c.name}=${c.value}`).join('; ');
    },
  };
}

async function deviceAuto(req, res) {
  const form = await readForm(req);
  const userCode = form.get('user_code');
  const user = form.get('user') || 'alice';
  const decision = form.get('decision') || 'approve';
  if (!userCode || !['approve', 'deny'].includes(decision)) {
    return sendJson(res, 400, { error: 'invalid_request', error_description: 'user_code and decision=approve|deny required' });
  }

  // same normalisation as oidc-provider's lib/helpers/user_codes.js
  const normalize = (c) => c.replace(/[a-z]/g, (ch) => ch.toUpperCase()).replace(/\W/g, '');
  const lookup = async () => provider.DeviceCode.findByUserCode(normalize(userCode), { ignoreExpiration: true });
  const before = await lookup();
  if (!before) return sendJson(res, 400, { error: 'not_found', error_description: 'unknown user_code' });
  if (before.isExpired) return sendJson(res, 400, { error: 'expired', error_description: 'user_code expired' });
  if (before.error || before.accountId || before.inFlight) {
    return sendJson(res, 400, { error: 'already_used', error_description: 'user_code already used' });
  }

  const jar = makeJar();
  const go = async (path, init = {}) => {
    const u = new URL(path, ISSUER);
    const r = await fetch(u, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers ?? {}), cookie: jar.header(u.pathname) },
    });
    jar.store(r);
    return r;
  };

  let r = await go('/device');
  const page = await r.text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)?.[1];
  if (!xsrf) return sendJson(res, 400, { error: 'failed', error_description: 'no xsrf on /device page' });

  const body = new URLSearchParams({ xsrf, user_code: userCode });
  body.set(decision === 'deny' ? 'abort' : 'confirm', 'yes');
  r = await go('/device', {
    method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });

  if (decision === 'approve') {
    for (let hops = 0; hops < 10 && r.status >= 300 && r.status < 400; hops += 1) {
      let next = new URL(r.headers.get('location'), ISSUER);
      await r.arrayBuffer();
      const m = /^\/interaction\/([^/]+)$/.exec(next.pathname);
      if (m) next = new URL(`/interaction/${m[1]}/auto?user=${encodeURIComponent(user)}`, ISSUER);
      r = await go(next.pathname + next.search);
    }
  }
  await r.arrayBuffer();

  const after = await lookup();
  if (decision === 'deny' && after?.error === 'access_denied') {
    return sendJson(res, 200, { status: 'denied', user_code: userCode });
  }
  if (decision === 'approve' && after?.accountId) {
    return sendJson(res, 200, { status: 'approved', user_code: userCode, sub: after.accountId });
  }
  return sendJson(res, 400, { error: 'failed', error_description: `device ${decision} did not take effect (last status ${r.status})` });
}

// ---------------------------------------------------------------------------
const providerCallback = provider.callback();

handler = async (req, res) => {
  const started = Date.now();
  if (LOG) res.on('finish', () => log(req.method, req.url, res.statusCode, `${Date.now() - started}ms`));
  try {
    const url = new URL(req.url, ISSUER);
    const m = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort|auto))?\/?$/.exec(url.pathname);
    if (m) return await interactionRoute(req, res, url, m[1], m[2] ?? '');
    if (url.pathname === '/device/auto') {
      if (req.method !== 'POST') return sendJson(res, 405, { error: 'invalid_request', error_description: 'use POST' });
      return await deviceAuto(req, res);
    }
    return providerCallback(req, res);
  } catch (err) {
    log('handler error', req.method, req.url, err);
    if (!res.headersSent) send(res, 500, 'internal error', 'text/plain');
    else res.destroy();
  }
};

// ---------------------------------------------------------------------------
// lifecycle
let stopping = false;
function shutdown(why, code = 0) {
  if (stopping) return;
  stopping = true;
  if (LOG) log('shutting down:', why);
  server.close(() => process.exit(code));
  server.closeAllConnections();
  mtlsServer?.closeAllConnections();
  setTimeout(() => process.exit(code), 1000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

// stdin EOF => parent is gone. Only when stdin is a pipe/socket: with
// stdin = /dev/null (or a file) EOF is immediate and means nothing.
try {
  const st = fs.fstatSync(0);
  if (st.isFIFO() || st.isSocket()) {
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('close', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }
} catch { /* no stdin at all */ }

// belt and braces: exit when re-parented (the parent died without closing stdin)
const parentPid = process.ppid;
setInterval(() => { if (process.ppid !== parentPid) shutdown('parent exited'); }, 1000).unref();

process.stdout.write(MTLS_ORIGIN ? `READY ${ISSUER} ${MTLS_ORIGIN}\n` : `READY ${ISSUER}\n`);
