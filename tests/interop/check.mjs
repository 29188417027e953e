// Self-test for server.mjs: starts it as a child process, waits for the READY
// line and drives every flow over plain HTTP (global fetch, no dependencies),
// the way the Rust client will. Prints `ok <flow>` / `FAIL <flow>: <why>` and
// exits non-zero on any failure.
//
//   node tests/interop/check.mjs            # run all flows
//   CHECK_VERBOSE=1 node ...check.mjs       # also dump every request/reply
//   CHECK_SERVER_LOG=1 node ...check.mjs    # show the server's stderr

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import readline from 'node:readline';

const here = path.dirname(fileURLToPath(import.meta.url));
const VERBOSE = process.env.CHECK_VERBOSE === '1';

// ---------------------------------------------------------------------------
// server process
function startServer(extraEnv = {}) {
  const child = spawn(process.execPath, [path.join(here, 'server.mjs')], {
    env: { ...process.env, ...extraEnv, PORT: '0', INTEROP_LOG: process.env.CHECK_SERVER_LOG === '1' ? '1' : '0' },
    // stdin is a pipe we keep open: closing it (or dying) stops the server
    stdio: ['pipe', 'pipe', process.env.CHECK_SERVER_LOG === '1' ? 'inherit' : 'ignore'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not print READY within 20 s')), 20000);
    const rl = readline.createInterface({ input: child.stdout });
    const lines = [];
    rl.on('line', (line) => {
      lines.push(line);
      const m = /^READY (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
      if (m && lines.length === 1) {
        clearTimeout(timer);
        resolve({ child, issuer: m[1], lines });
      } else {
        reject(new Error(`unexpected stdout line: ${line}`));
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited early (${code})`)));
  });
}

// ---------------------------------------------------------------------------
// tiny path-aware cookie jar (RFC 6265 subset: name, value, Path, expiry)
class CookieJar {
  #c = new Map();

  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let cpath = '/';
      let expired = false;
      for (const a of attrs) {
        const i = a.indexOf('=');
        const k = (i === -1 ? a : a.slice(0, i)).toLowerCase();
        const v = i === -1 ? '' : a.slice(i + 1);
        if (k === 'path') cpath = v || '/';
        if (k === 'expires' && Date.parse(v) <= Date.now()) expired = true;
        if (k === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${name}\0${cpath}`;
      if (expired) this.#c.delete(key); else this.#c.set(key, { name, value, path: cpath });
    }
  }

  header(pathname) {
    const match = (p) => pathname === p || p === '/'
      || pathname.startsWith(p.endsWith('/') ? p : `${p}/`);
    return [...this.#c.values()].filter((c) => match(c.path)).map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

// ---------------------------------------------------------------------------
// HTTP helpers
let ISSUER;
let META;

function dump(label, obj) {
  if (VERBOSE) console.error(`  [${label}]`, typeof obj === 'string' ? obj : JSON.stringify(obj));
}

async function postForm(url, fields, { basic, headers = {} } = {}) {
  const h = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers };
  if (basic) {
    // RFC 6749 2.3.1: form-urlencode id and secret, then base64
    const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
    h.authorization = `Basic ${Buffer.from(`${enc(basic[0])}:${enc(basic[1])}`).toString('base64')}`;
  }
  const body = new URLSearchParams(fields);
  const res = await fetch(url, { method: 'POST', headers: h, body, redirect: 'manual' });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  dump(`POST ${new URL(url).pathname} ${basic ? `(basic ${basic[0]}) ` : ''}${body}`, `${res.status} ${text}`);
  return { status: res.status, headers: res.headers, json, text };
}

const token = (fields, opts) => postForm(META.token_endpoint, fields, opts);

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function assertJson(r, status, msg) {
  assert(r.status === status, `${msg}: expected HTTP ${status}, got ${r.status} ${r.text}`);
  assert(r.json && typeof r.json === 'object', `${msg}: body is not JSON: ${r.text}`);
}
function assertError(r, status, error, msg) {
  assertJson(r, status, msg);
  assert(r.json.error === error, `${msg}: expected error ${error}, got ${r.text}`);
  assert(typeof r.json.error_description === 'string', `${msg}: no error_description`);
}
function assertTokenResponse(r, msg, { refresh = false, scope } = {}) {
  assertJson(r, 200, msg);
  const j = r.json;
  assert(typeof j.access_token === 'string' && j.access_token.length > 0, `${msg}: no access_token`);
  assert(j.token_type === 'Bearer', `${msg}: token_type ${j.token_type}`);
  assert(Number.isInteger(j.expires_in) && j.expires_in > 0 && j.expires_in <= 300, `${msg}: expires_in ${j.expires_in}`);
  if (refresh) assert(typeof j.refresh_token === 'string', `${msg}: no refresh_token`);
  if (scope !== undefined) assert(j.scope === scope, `${msg}: scope ${JSON.stringify(j.scope)} != ${JSON.stringify(scope)}`);
  assert(r.headers.get('cache-control') === 'no-store', `${msg}: cache-control ${r.headers.get('cache-control')}`);
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
function pkce() {
  const verifier = b64url(crypto.randomBytes(32));
  return { verifier, challenge: crypto.createHash('sha256').update(verifier).digest('base64url') };
}

// Authorization code flow: GET the authorize URL, follow redirects by hand
// with a cookie jar. If `rewriteToAuto` is set, a redirect to the bare
// /interaction/<uid> page is rewritten to /interaction/<uid>/auto?user=...
// (otherwise the request is expected to carry login_hint, which makes the
// server redirect to /auto by itself). Stops at the client's redirect_uri.
async function authorize({
  clientId, scope, redirectUri, rewriteToAuto = 'alice', loginHint, decision, extra = {}, withPkce = true,
  jar = new CookieJar(),
}) {
  const state = b64url(crypto.randomBytes(12));
  const p = withPkce ? pkce() : {};
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, state, ...extra });
  if (scope) q.set('scope', scope);
  if (withPkce) { q.set('code_challenge', p.challenge); q.set('code_challenge_method', 'S256'); }
  if (loginHint) q.set('login_hint', loginHint);
  let url = new URL(`${META.authorization_endpoint}?${q}`);
  const hops = [];
  for (let i = 0; i < 15; i += 1) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url.pathname) } });
    jar.store(res);
    await res.arrayBuffer();
    hops.push(`${res.status} ${url.pathname}`);
    if (res.status < 300 || res.status >= 400) {
      throw new Error(`authorize flow stopped with HTTP ${res.status} at ${url.pathname} (${hops.join(' -> ')})`);
    }
    const loc = new URL(res.headers.get('location'), url);
    if (loc.href.startsWith(redirectUri)) {
      dump('authorize hops', `${hops.join(' -> ')} -> ${loc.href}`);
      return { params: Object.fromEntries(loc.searchParams), state, verifier: p.verifier, location: loc, hops };
    }
    if (rewriteToAuto && /^\/interaction\/[^/]+$/.test(loc.pathname) && loc.origin === ISSUER) {
      loc.pathname += '/auto';
      loc.search = new URLSearchParams({ user: rewriteToAuto, ...(decision ? { decision } : {}) }).toString();
    }
    url = loc;
  }
  throw new Error(`too many redirects: ${hops.join(' -> ')}`);
}

const freePortRedirect = () => `http://127.0.0.1:${20000 + crypto.randomInt(40000)}/callback`;

// ---------------------------------------------------------------------------
// flows
const flows = [];
const flow = (name, fn) => flows.push({ name, fn });
const ctx = {};

flow('discovery', async () => {
  const res = await fetch(`${ISSUER}/.well-known/openid-configuration`);
  assert(res.status === 200, `HTTP ${res.status}`);
  META = await res.json();
  dump('discovery', META);
  assert(META.issuer === ISSUER, `issuer ${META.issuer}`);
  for (const k of ['authorization_endpoint', 'token_endpoint', 'device_authorization_endpoint',
    'revocation_endpoint', 'introspection_endpoint', 'jwks_uri', 'userinfo_endpoint']) {
    assert(typeof META[k] === 'string' && META[k].startsWith(ISSUER), `missing ${k}`);
  }
  assert(META.code_challenge_methods_supported?.includes('S256'), 'no S256');
  assert(META.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:device_code'), 'no device grant');
  assert(META.grant_types_supported.includes('client_credentials'), 'no client_credentials');
});

flow('client_credentials basic', async () => {
  const r = await token({ grant_type: 'client_credentials', scope: 'api:read' }, { basic: ['basic-client', 'basic-secret'] });
  assertTokenResponse(r, 'basic', { scope: 'api:read' });
  assert(r.json.expires_in === 300, `expires_in ${r.json.expires_in}`);
  assert(!('refresh_token' in r.json), 'unexpected refresh_token');
  ctx.ccToken = r.json.access_token;
});

flow('client_credentials post', async () => {
  const r = await token({
    grant_type: 'client_credentials', scope: 'api:read api:write', client_id: 'post-client', client_secret: 'post-secret',
  });
  assertTokenResponse(r, 'post', { scope: 'api:read api:write' });
});

flow('client_credentials without scope', async () => {
  const r = await token({ grant_type: 'client_credentials' }, { basic: ['basic-client', 'basic-secret'] });
  assertTokenResponse(r, 'no scope');
  assert(!('scope' in r.json), `unexpected scope ${r.json.scope}`);
});

flow('client_credentials unknown scope is dropped', async () => {
  const r = await token({ grant_type: 'client_credentials', scope: 'api:read bogus' }, { basic: ['basic-client', 'basic-secret'] });
  assertTokenResponse(r, 'bogus scope', { scope: 'api:read' });
});

flow('client_credentials not allowed for public-client -> invalid_request 400', async () => {
  // oidc-provider answers invalid_request (not unauthorized_client) here
  const r = await token({ grant_type: 'client_credentials', client_id: 'public-client' });
  assertError(r, 400, 'invalid_request', 'public cc');
  assert(r.json.error_description === 'requested grant type is not allowed for this client', r.text);
});

flow('wrong secret basic -> invalid_client 401', async () => {
  const r = await token({ grant_type: 'client_credentials' }, { basic: ['basic-client', 'nope'] });
  assertError(r, 401, 'invalid_client', 'wrong basic secret');
  const wa = r.headers.get('www-authenticate') ?? '';
  assert(wa.startsWith('Basic ') && wa.includes('error="invalid_client"'), `www-authenticate: ${wa}`);
});

flow('wrong secret post -> invalid_client 401', async () => {
  const r = await token({ grant_type: 'client_credentials', client_id: 'post-client', client_secret: 'nope' });
  assertError(r, 401, 'invalid_client', 'wrong post secret');
});

flow('secret methods are interchangeable (basic-client via post, post-client via basic)', async () => {
  // oidc-provider accepts client_secret_basic and client_secret_post for any
  // client registered with either of the two
  const r = await token({ grant_type: 'client_credentials', client_id: 'basic-client', client_secret: 'basic-secret' });
  assertTokenResponse(r, 'post for basic client');
  const r2 = await token({ grant_type: 'client_credentials' }, { basic: ['post-client', 'post-secret'] });
  assertTokenResponse(r2, 'basic for post client');
});

flow('confidential client without secret -> invalid_client 401', async () => {
  const r = await token({ grant_type: 'client_credentials', client_id: 'basic-client' });
  assertError(r, 401, 'invalid_client', 'no secret');
});

flow('two auth mechanisms at once -> invalid_request 400', async () => {
  const r = await token({ grant_type: 'client_credentials', client_id: 'basic-client', client_secret: 'basic-secret' },
    { basic: ['basic-client', 'basic-secret'] });
  assertError(r, 400, 'invalid_request', 'basic+post');
});

flow('no client authentication at all -> invalid_request 400', async () => {
  const r = await token({ grant_type: 'client_credentials' });
  assertError(r, 400, 'invalid_request', 'no client');
});

flow('unknown client -> invalid_client 401', async () => {
  const r = await token({ grant_type: 'client_credentials' }, { basic: ['nobody', 'x'] });
  assertError(r, 401, 'invalid_client', 'unknown client');
});

flow('unsupported grant_type', async () => {
  const r = await token({ grant_type: 'password', username: 'a', password: 'b' }, { basic: ['basic-client', 'basic-secret'] });
  assertError(r, 400, 'unsupported_grant_type', 'password grant');
});

flow('authorization code + PKCE, public-client (via /interaction/:uid/auto)', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'public-client', scope: 'openid offline_access', redirectUri, extra: { prompt: 'consent' } });
  assert(a.params.state === a.state, `state ${a.params.state}`);
  assert(a.params.code, `no code: ${a.location.href}`);
  assert(a.params.iss === ISSUER, `iss ${a.params.iss}`);
  const r = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri,
    code_verifier: a.verifier, client_id: 'public-client',
  });
  assertTokenResponse(r, 'public code', { refresh: true, scope: 'openid offline_access' });
  assert(typeof r.json.id_token === 'string', 'no id_token for openid scope');
  // code is single-use
  const again = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri,
    code_verifier: a.verifier, client_id: 'public-client',
  });
  assertError(again, 400, 'invalid_grant', 'code re-use');
  // replaying a code revokes what was issued from it
  const i = await postForm(META.introspection_endpoint, { token: r.json.access_token, client_id: 'public-client' });
  assert(i.status === 200 && i.json.active === false, `AT after code replay: ${i.text}`);
  const rr = await token({ grant_type: 'refresh_token', refresh_token: r.json.refresh_token, client_id: 'public-client' });
  assertError(rr, 400, 'invalid_grant', 'RT after code replay');
});

flow('authorization code + PKCE, basic-client (login_hint, plain redirect following)', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({
    clientId: 'basic-client', scope: 'api:read', redirectUri, rewriteToAuto: false, loginHint: 'bob',
  });
  assert(a.params.state === a.state && a.params.code, `bad callback ${a.location.href}`);
  const r = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri, code_verifier: a.verifier,
  }, { basic: ['basic-client', 'basic-secret'] });
  assertTokenResponse(r, 'basic code', { refresh: true, scope: 'api:read' });
  assert(!('id_token' in r.json), 'unexpected id_token without openid');
  ctx.basicAccess = r.json.access_token;
  ctx.basicRefresh = r.json.refresh_token;
});

flow('offline_access without prompt=consent is dropped (refresh token still issued)', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'post-client', scope: 'openid offline_access', redirectUri });
  const r = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri, code_verifier: a.verifier,
    client_id: 'post-client', client_secret: 'post-secret',
  });
  assertTokenResponse(r, 'post code', { refresh: true, scope: 'openid' });
});

flow('authorization without any scope -> access_denied on redirect', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'post-client', redirectUri });
  assert(a.params.error === 'access_denied' && a.params.state === a.state && !a.params.code, `callback ${a.location.href}`);
});

flow('authorization code: step-by-step login + consent forms', async () => {
  const jar = new CookieJar();
  const redirectUri = freePortRedirect();
  const p = pkce();
  const q = new URLSearchParams({
    response_type: 'code', client_id: 'public-client', redirect_uri: redirectUri, scope: 'openid', state: 'xyz',
    code_challenge: p.challenge, code_challenge_method: 'S256',
  });
  const get = async (u, init = {}) => {
    const url = new URL(u, ISSUER);
    const res = await fetch(url, {
      ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), cookie: jar.header(url.pathname) },
    });
    jar.store(res);
    return res;
  };
  let res = await get(`${META.authorization_endpoint}?${q}`);
  assert(res.status === 303, `authorize ${res.status}`);
  const interaction = new URL(res.headers.get('location'), ISSUER).pathname;
  res = await get(interaction);
  const page = await res.text();
  assert(res.status === 200 && page.includes('content="login"'), `login page ${res.status}`);
  res = await get(`${interaction}/login`, {
    method: 'POST', body: new URLSearchParams({ login: 'carol' }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  assert(res.status === 303, `login POST ${res.status}`);
  res = await get(res.headers.get('location')); // resume -> consent interaction
  assert(res.status === 303, `resume ${res.status}`);
  const consent = new URL(res.headers.get('location'), ISSUER).pathname;
  res = await get(consent);
  assert((await res.text()).includes('content="consent"'), 'no consent page');
  res = await get(`${consent}/confirm`, { method: 'POST', body: new URLSearchParams(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert(res.status === 303, `confirm POST ${res.status}`);
  res = await get(res.headers.get('location'));
  assert(res.status === 303, `final resume ${res.status}`);
  const cb = new URL(res.headers.get('location'));
  assert(cb.href.startsWith(redirectUri) && cb.searchParams.get('code') && cb.searchParams.get('state') === 'xyz', `callback ${cb}`);
  const r = await token({
    grant_type: 'authorization_code', code: cb.searchParams.get('code'), redirect_uri: redirectUri,
    code_verifier: p.verifier, client_id: 'public-client',
  });
  assertTokenResponse(r, 'stepwise', { refresh: true, scope: 'openid' });
});

flow('second authorization in the same cookie jar (session reused, consent only)', async () => {
  const jar = new CookieJar();
  const redirectUri = freePortRedirect();
  const a1 = await authorize({ clientId: 'public-client', scope: 'openid', redirectUri, rewriteToAuto: 'frank', jar });
  assert(a1.params.code, 'first code');
  // the session cookie now says "frank"; native clients still get a consent
  // prompt every time, and /auto consents for the session's user
  const a2 = await authorize({ clientId: 'public-client', scope: 'openid', redirectUri, rewriteToAuto: 'someone-else', jar });
  assert(a2.params.code, `second code: ${a2.location.href}`);
  const r = await token({
    grant_type: 'authorization_code', code: a2.params.code, redirect_uri: redirectUri, code_verifier: a2.verifier, client_id: 'public-client',
  });
  assertTokenResponse(r, 'second code');
  const sub = JSON.parse(Buffer.from(r.json.id_token.split('.')[1], 'base64url')).sub;
  assert(sub === 'frank', `sub ${sub}`);
});

flow('authorization denied (/auto?decision=deny) -> access_denied', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'public-client', scope: 'openid', redirectUri, decision: 'deny' });
  assert(a.params.error === 'access_denied', `error ${a.params.error}`);
  assert(a.params.state === a.state, 'state not echoed');
  assert(!a.params.code, 'code on denial');
});

flow('cancel via POST /interaction/:uid/abort -> access_denied', async () => {
  const jar = new CookieJar();
  const redirectUri = freePortRedirect();
  const p = pkce();
  const q = new URLSearchParams({
    response_type: 'code', client_id: 'public-client', redirect_uri: redirectUri, scope: 'openid', state: 'st',
    code_challenge: p.challenge, code_challenge_method: 'S256',
  });
  let url = new URL(`${META.authorization_endpoint}?${q}`);
  let res = await fetch(url, { redirect: 'manual' });
  jar.store(res);
  const interaction = new URL(res.headers.get('location'), ISSUER);
  url = new URL(`${interaction.pathname}/abort`, ISSUER);
  res = await fetch(url, { method: 'POST', redirect: 'manual', headers: { cookie: jar.header(url.pathname) } });
  assert(res.status === 303, `abort ${res.status}`);
  url = new URL(res.headers.get('location'));
  res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url.pathname) } });
  const cb = new URL(res.headers.get('location'));
  assert(cb.searchParams.get('error') === 'access_denied' && cb.searchParams.get('state') === 'st', `callback ${cb}`);
  assert(cb.searchParams.get('error_description') === 'End-User aborted interaction', `desc ${cb}`);
});

flow('session cookie path and nonce in id_token', async () => {
  const jar = new CookieJar();
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'public-client', scope: 'openid', redirectUri, jar, extra: { nonce: 'n-123' } });
  assert(jar.header('/').includes('_session='), `no _session cookie at path /: ${jar.header('/')}`);
  const r = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri, code_verifier: a.verifier, client_id: 'public-client',
  });
  const [h, b] = r.json.id_token.split('.').slice(0, 2).map((x) => JSON.parse(Buffer.from(x, 'base64url')));
  dump('id_token', { h, b });
  assert(h.alg === 'RS256' && h.kid === 'interop-rs256', `header ${JSON.stringify(h)}`);
  assert(b.nonce === 'n-123' && b.sub === 'alice' && b.aud === 'public-client' && b.iss === ISSUER, `claims ${JSON.stringify(b)}`);
});

flow('localhost redirect_uri is not 127.0.0.1 -> 400 page', async () => {
  const q = new URLSearchParams({
    response_type: 'code', client_id: 'public-client', redirect_uri: 'http://localhost:5555/callback', scope: 'openid',
    code_challenge: pkce().challenge, code_challenge_method: 'S256',
  });
  const res = await fetch(`${META.authorization_endpoint}?${q}`, { redirect: 'manual' });
  const page = await res.text();
  assert(res.status === 400 && page.includes('invalid_redirect_uri'), `HTTP ${res.status}`);
});

flow('PKCE required -> invalid_request on redirect', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'basic-client', scope: 'openid', redirectUri, withPkce: false });
  assert(a.params.error === 'invalid_request', `error ${a.params.error}`);
  assert(/PKCE/.test(a.params.error_description ?? ''), `desc ${a.params.error_description}`);
});

flow('plain PKCE method rejected -> invalid_request on redirect', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({
    clientId: 'public-client', redirectUri, withPkce: false, extra: { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' },
  });
  assert(a.params.error === 'invalid_request', `error ${a.params.error}`);
});

flow('unregistered redirect_uri -> 400 page, no redirect', async () => {
  const q = new URLSearchParams({
    response_type: 'code', client_id: 'public-client', redirect_uri: 'http://127.0.0.1:5555/other',
    code_challenge: pkce().challenge, code_challenge_method: 'S256',
  });
  const res = await fetch(`${META.authorization_endpoint}?${q}`, { redirect: 'manual' });
  const page = await res.text();
  dump('bad redirect_uri', `${res.status} ${res.headers.get('content-type')} ${page.slice(0, 400)}`);
  assert(res.status === 400, `HTTP ${res.status}`);
  assert(!res.headers.get('location'), 'redirected');
});

flow('wrong code_verifier -> invalid_grant', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'public-client', scope: 'openid', redirectUri });
  const r = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri,
    code_verifier: pkce().verifier, client_id: 'public-client',
  });
  assertError(r, 400, 'invalid_grant', 'bad verifier');
});

flow('redirect_uri mismatch at token endpoint -> invalid_grant', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'public-client', scope: 'openid', redirectUri });
  const r = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: 'http://127.0.0.1/callback',
    code_verifier: a.verifier, client_id: 'public-client',
  });
  assertError(r, 400, 'invalid_grant', 'redirect mismatch');
});

flow('bad code -> invalid_grant', async () => {
  const r = await token({
    grant_type: 'authorization_code', code: 'not-a-real-code', redirect_uri: 'http://127.0.0.1/callback',
    code_verifier: pkce().verifier,
  }, { basic: ['basic-client', 'basic-secret'] });
  assertError(r, 400, 'invalid_grant', 'bad code');
});

flow('missing code -> invalid_request', async () => {
  const r = await token({ grant_type: 'authorization_code', redirect_uri: 'http://127.0.0.1/callback' }, { basic: ['basic-client', 'basic-secret'] });
  assertError(r, 400, 'invalid_request', 'missing code');
});

// authorization code flow + token exchange in one go
async function codeTokens(clientId, scope, { creds, user = 'alice', extra } = {}) {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId, scope, redirectUri, rewriteToAuto: user, extra });
  const f = { grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri, code_verifier: a.verifier };
  let r;
  if (!creds) r = await token({ ...f, client_id: clientId });
  else if (clientId === 'basic-client') r = await token(f, { basic: creds });
  else r = await token({ ...f, client_id: creds[0], client_secret: creds[1] });
  assertTokenResponse(r, `code exchange for ${clientId}`, { refresh: true });
  return r.json;
}

flow('openid + api:read: code gives a userinfo token unless resource= is sent', async () => {
  const creds = ['basic-client', 'basic-secret'];
  // without resource: access token is for userinfo, scope "openid"
  const t = await codeTokens('basic-client', 'openid api:read', { creds });
  assert(t.scope === 'openid' && typeof t.id_token === 'string', `scope ${t.scope}`);
  // resource=urn:specauth:api on the refresh (or code) request: API token
  const r = await token({ grant_type: 'refresh_token', refresh_token: t.refresh_token, resource: 'urn:specauth:api' }, { basic: creds });
  assertTokenResponse(r, 'refresh with resource', { refresh: true, scope: 'api:read' });
  const i = await postForm(META.introspection_endpoint, { token: r.json.access_token }, { basic: creds });
  assert(i.json.active === true && i.json.aud === 'urn:specauth:api' && i.json.scope === 'api:read', `introspect ${i.text}`);
  // unknown resource -> invalid_target
  const bad = await token({ grant_type: 'refresh_token', refresh_token: r.json.refresh_token, resource: 'urn:other' }, { basic: creds });
  assertError(bad, 400, 'invalid_target', 'unknown resource');
});

flow('refresh rotation (public-client) + re-use -> invalid_grant', async () => {
  const t = await codeTokens('public-client', 'openid offline_access', { extra: { prompt: 'consent' } });
  ctx.publicRefresh = t.refresh_token;
  ctx.publicAccess = t.access_token;
  const r1 = await token({ grant_type: 'refresh_token', refresh_token: ctx.publicRefresh, client_id: 'public-client' });
  assertTokenResponse(r1, 'refresh 1', { refresh: true, scope: 'openid offline_access' });
  assert(r1.json.refresh_token !== ctx.publicRefresh, 'refresh token not rotated');
  const reuse = await token({ grant_type: 'refresh_token', refresh_token: ctx.publicRefresh, client_id: 'public-client' });
  assertError(reuse, 400, 'invalid_grant', 're-use of rotated refresh token');
  // re-use detection revokes the whole grant: the rotated token is dead too
  const r2 = await token({ grant_type: 'refresh_token', refresh_token: r1.json.refresh_token, client_id: 'public-client' });
  assertError(r2, 400, 'invalid_grant', 'successor after re-use');
});

flow('refresh rotation (basic-client), chain of two', async () => {
  const r1 = await token({ grant_type: 'refresh_token', refresh_token: ctx.basicRefresh }, { basic: ['basic-client', 'basic-secret'] });
  assertTokenResponse(r1, 'refresh 1', { refresh: true, scope: 'api:read' });
  assert(r1.json.refresh_token !== ctx.basicRefresh, 'not rotated');
  const r2 = await token({ grant_type: 'refresh_token', refresh_token: r1.json.refresh_token }, { basic: ['basic-client', 'basic-secret'] });
  assertTokenResponse(r2, 'refresh 2', { refresh: true, scope: 'api:read' });
  const old = await token({ grant_type: 'refresh_token', refresh_token: ctx.basicRefresh }, { basic: ['basic-client', 'basic-secret'] });
  assertError(old, 400, 'invalid_grant', 'first token re-use');
});

flow('refresh with a scope subset / widened scope', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'public-client', scope: 'openid offline_access', redirectUri });
  const t = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri, code_verifier: a.verifier, client_id: 'public-client',
  });
  assertTokenResponse(t, 'code', { refresh: true });
  const narrowed = await token({ grant_type: 'refresh_token', refresh_token: t.json.refresh_token, client_id: 'public-client', scope: 'openid' });
  assertTokenResponse(narrowed, 'narrow', { refresh: true, scope: 'openid' });
  const widened = await token({ grant_type: 'refresh_token', refresh_token: narrowed.json.refresh_token, client_id: 'public-client', scope: 'openid api:write' });
  assertError(widened, 400, 'invalid_scope', 'widen');
});

flow('refresh with unknown token -> invalid_grant', async () => {
  const r = await token({ grant_type: 'refresh_token', refresh_token: 'garbage', client_id: 'public-client' });
  assertError(r, 400, 'invalid_grant', 'garbage refresh');
});

async function deviceStart(fields, opts) {
  const r = await postForm(META.device_authorization_endpoint, fields, opts);
  assertJson(r, 200, 'device authorization');
  const j = r.json;
  for (const k of ['device_code', 'user_code', 'verification_uri', 'verification_uri_complete']) {
    assert(typeof j[k] === 'string', `device response lacks ${k}`);
  }
  assert(j.expires_in === 120, `expires_in ${j.expires_in}`);
  assert(j.interval === 1, `interval ${j.interval}`);
  assert(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/.test(j.user_code), `user_code ${j.user_code}`);
  return j;
}
const deviceAuto = (fields) => postForm(`${ISSUER}/device/auto`, fields);
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

flow('device flow approve (public-client)', async () => {
  const d = await deviceStart({ client_id: 'public-client', scope: 'openid offline_access' });
  const pending = await token({ grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'public-client' });
  assertError(pending, 400, 'authorization_pending', 'first poll');
  // immediate second poll: oidc-provider does not answer slow_down
  const pending2 = await token({ grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'public-client' });
  assertError(pending2, 400, 'authorization_pending', 'fast second poll');
  const ok = await deviceAuto({ user_code: d.user_code, user: 'alice', decision: 'approve' });
  assertJson(ok, 200, 'device approve');
  assert(ok.json.status === 'approved', `device approve: ${ok.text}`);
  const twice = await deviceAuto({ user_code: d.user_code, decision: 'approve' });
  assertJson(twice, 400, 'approve twice');
  assert(twice.json.error === 'already_used', `approve twice: ${twice.text}`);
  const t = await token({ grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'public-client' });
  assertTokenResponse(t, 'device token', { refresh: true, scope: 'openid offline_access' });
  assert(typeof t.json.id_token === 'string', 'no id_token');
  const again = await token({ grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'public-client' });
  assertError(again, 400, 'invalid_grant', 'device code re-use');
  // once redeemed the user code is gone altogether
  const after = await deviceAuto({ user_code: d.user_code, decision: 'approve' });
  assert(after.status === 400 && after.json.error === 'not_found', `approve after redeem: ${after.text}`);
});

flow('device flow approve (basic-client, lower-case code without dash, api scope)', async () => {
  const d = await deviceStart({ scope: 'api:read' }, { basic: ['basic-client', 'basic-secret'] });
  const ok = await deviceAuto({ user_code: d.user_code.replace('-', '').toLowerCase(), user: 'dave' });
  assert(ok.status === 200 && ok.json.status === 'approved', `approve: ${ok.text}`);
  const t = await token({ grant_type: DEVICE_GRANT, device_code: d.device_code }, { basic: ['basic-client', 'basic-secret'] });
  assertTokenResponse(t, 'device token', { refresh: true, scope: 'api:read' });
});

flow('device flow deny -> access_denied', async () => {
  const d = await deviceStart({ scope: 'openid' }, { basic: ['basic-client', 'basic-secret'] });
  const pending = await token({ grant_type: DEVICE_GRANT, device_code: d.device_code }, { basic: ['basic-client', 'basic-secret'] });
  assertError(pending, 400, 'authorization_pending', 'poll');
  const no = await deviceAuto({ user_code: d.user_code, user: 'alice', decision: 'deny' });
  assert(no.status === 200 && no.json.status === 'denied', `deny: ${no.text}`);
  const t = await token({ grant_type: DEVICE_GRANT, device_code: d.device_code }, { basic: ['basic-client', 'basic-secret'] });
  assertError(t, 400, 'access_denied', 'denied poll');
  const again = await token({ grant_type: DEVICE_GRANT, device_code: d.device_code }, { basic: ['basic-client', 'basic-secret'] });
  assertError(again, 400, 'invalid_grant', 'poll after denial');
});

flow('device flow bad device_code / unknown user_code', async () => {
  const r = await token({ grant_type: DEVICE_GRANT, device_code: 'nope', client_id: 'public-client' });
  assertError(r, 400, 'invalid_grant', 'bad device_code');
  const u = await deviceAuto({ user_code: 'BCDF-GHJK', decision: 'approve' });
  assertJson(u, 400, 'unknown user_code');
  assert(u.json.error === 'not_found', `unknown user_code: ${u.text}`);
});

flow('device authorization: post-client not allowed -> invalid_request 400', async () => {
  const r = await postForm(META.device_authorization_endpoint, { client_id: 'post-client', client_secret: 'post-secret' });
  assertError(r, 400, 'invalid_request', 'post-client device');
});

async function introspect(tok, creds, hint) {
  const f = { token: tok };
  if (hint) f.token_type_hint = hint;
  return postForm(META.introspection_endpoint, f, { basic: creds });
}

flow('introspection active (client_credentials token)', async () => {
  const r = await introspect(ctx.ccToken, ['basic-client', 'basic-secret']);
  assertJson(r, 200, 'introspect');
  const j = r.json;
  assert(j.active === true, `active ${j.active}`);
  assert(j.client_id === 'basic-client' && j.token_type === 'Bearer' && j.scope === 'api:read', `claims ${r.text}`);
  assert(j.aud === 'urn:specauth:api', `aud ${j.aud}`);
  assert(Number.isInteger(j.exp) && Number.isInteger(j.iat), 'exp/iat');
});

flow('revoke access token then introspect -> active false', async () => {
  const creds = ['basic-client', 'basic-secret'];
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'basic-client', scope: 'openid api:read', redirectUri, rewriteToAuto: 'bob' });
  const t = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri, code_verifier: a.verifier,
  }, { basic: creds });
  assertTokenResponse(t, 'code', { refresh: true });
  const at = t.json.access_token;
  const before = await introspect(at, creds, 'access_token');
  assert(before.status === 200 && before.json.active === true && before.json.sub === 'bob', `before: ${before.text}`);
  const rt = await introspect(t.json.refresh_token, creds, 'refresh_token');
  assert(rt.status === 200 && rt.json.active === true && !('token_type' in rt.json), `refresh introspect: ${rt.text}`);
  const rv = await postForm(META.revocation_endpoint, { token: at, token_type_hint: 'access_token' }, { basic: creds });
  assert(rv.status === 200 && rv.text === '', `revoke: ${rv.status} ${rv.text}`);
  const after = await introspect(at, creds);
  assertJson(after, 200, 'introspect after revoke');
  assert(JSON.stringify(after.json) === '{"active":false}', `after: ${after.text}`);
  // oidc-provider revokes every token of the grant when one access token is
  // revoked: the refresh token is dead as well
  const r = await token({ grant_type: 'refresh_token', refresh_token: t.json.refresh_token }, { basic: creds });
  assertError(r, 400, 'invalid_grant', 'refresh after AT revoke');
});

flow('reuse of a rotated refresh token revokes the access tokens of the grant', async () => {
  const creds = ['basic-client', 'basic-secret'];
  const i = await introspect(ctx.basicAccess, creds);
  assert(i.status === 200 && i.json.active === false, `introspect: ${i.text}`);
});

flow('revoke refresh token -> refresh invalid_grant', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'post-client', scope: 'openid', redirectUri });
  const t = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri, code_verifier: a.verifier,
    client_id: 'post-client', client_secret: 'post-secret',
  });
  assertTokenResponse(t, 'code', { refresh: true });
  const rv = await postForm(META.revocation_endpoint, {
    token: t.json.refresh_token, token_type_hint: 'refresh_token', client_id: 'post-client', client_secret: 'post-secret',
  });
  assert(rv.status === 200 && rv.text === '', `revoke: ${rv.status}`);
  const r = await token({ grant_type: 'refresh_token', refresh_token: t.json.refresh_token, client_id: 'post-client', client_secret: 'post-secret' });
  assertError(r, 400, 'invalid_grant', 'refresh after revoke');
  // revoking a refresh token revokes the grant: the access token is gone too
  const i = await postForm(META.introspection_endpoint, { token: t.json.access_token, client_id: 'post-client', client_secret: 'post-secret' });
  assert(i.status === 200 && i.json.active === false, `introspect AT after RT revoke: ${i.text}`);
});

flow('revoke unknown token -> 200', async () => {
  const rv = await postForm(META.revocation_endpoint, { token: 'garbage' }, { basic: ['basic-client', 'basic-secret'] });
  assert(rv.status === 200 && rv.text === '', `revoke garbage: ${rv.status} ${rv.text}`);
});

flow('public client introspects own token', async () => {
  const r = await postForm(META.introspection_endpoint, { token: ctx.publicAccess, client_id: 'public-client' });
  assertJson(r, 200, 'public introspect');
  // grant was revoked by the re-use detection above
  assert(r.json.active === false, `public introspect: ${r.text}`);
});

flow('introspection / revocation wrong secret -> invalid_client 401', async () => {
  const i = await introspect(ctx.ccToken, ['basic-client', 'nope']);
  assertError(i, 401, 'invalid_client', 'introspect');
  const rv = await postForm(META.revocation_endpoint, { token: ctx.ccToken }, { basic: ['basic-client', 'nope'] });
  assertError(rv, 401, 'invalid_client', 'revoke');
});

flow('userinfo with Bearer', async () => {
  const redirectUri = freePortRedirect();
  const a = await authorize({ clientId: 'public-client', scope: 'openid', redirectUri, rewriteToAuto: 'erin' });
  const t = await token({
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: redirectUri, code_verifier: a.verifier, client_id: 'public-client',
  });
  assertTokenResponse(t, 'code');
  const res = await fetch(META.userinfo_endpoint, { headers: { authorization: `Bearer ${t.json.access_token}` } });
  const body = await res.json();
  dump('userinfo', `${res.status} ${JSON.stringify(body)}`);
  assert(res.status === 200 && body.sub === 'erin', `userinfo ${res.status} ${JSON.stringify(body)}`);
});

// ---------------------------------------------------------------------------
let failures = 0;
let server;
try {
  server = await startServer();
  ISSUER = server.issuer;
  if (VERBOSE) console.error(`server: ${server.issuer}`);
  for (const { name, fn } of flows) {
    try {
      await fn();
      console.log(`ok ${name}`);
    } catch (err) {
      failures += 1;
      console.log(`FAIL ${name}: ${err.message}`);
      if (VERBOSE) console.error(err.stack);
    }
  }
} catch (err) {
  failures += 1;
  console.log(`FAIL startup: ${err.message}`);
}

if (server) {
  // closing stdin is enough to stop the server; check it really exits
  const exited = new Promise((resolve) => server.child.once('exit', (code, signal) => resolve({ code, signal })));
  server.child.stdin.end();
  const t = setTimeout(() => server.child.kill('SIGKILL'), 5000);
  const { code, signal } = await exited;
  clearTimeout(t);
  if (server.lines.length !== 1) { failures += 1; console.log(`FAIL stdout has only the READY line: ${JSON.stringify(server.lines)}`); } else console.log('ok stdout has only the READY line');
  if (code === 0) console.log('ok server exits on stdin EOF');
  else { failures += 1; console.log(`FAIL server exits on stdin EOF: code ${code} signal ${signal}`); }
}

// device code expiry, on a second server with DEVICE_CODE_TTL=2
try {
  const s3 = await startServer({ DEVICE_CODE_TTL: '2' });
  const saved = [ISSUER, META];
  ISSUER = s3.issuer;
  META = { ...META };
  for (const k of ['token_endpoint', 'device_authorization_endpoint']) META[k] = META[k].replace(saved[0], ISSUER);
  try {
    const d = await postForm(META.device_authorization_endpoint, { client_id: 'public-client', scope: 'openid' });
    assert(d.status === 200 && d.json.expires_in === 2, `device auth ${d.text}`);
    await new Promise((r) => setTimeout(r, 3000));
    const t = await token({ grant_type: DEVICE_GRANT, device_code: d.json.device_code, client_id: 'public-client' });
    assertError(t, 400, 'expired_token', 'expired device code');
    const a = await deviceAuto({ user_code: d.json.user_code });
    assert(a.status === 400 && a.json.error === 'expired', `approve expired: ${a.text}`);
    console.log('ok device flow expired_token (DEVICE_CODE_TTL=2)');
  } catch (err) {
    failures += 1;
    console.log(`FAIL device flow expired_token (DEVICE_CODE_TTL=2): ${err.message}`);
  } finally {
    [ISSUER, META] = saved;
    s3.child.kill('SIGTERM');
  }
} catch (err) {
  failures += 1;
  console.log(`FAIL device flow expired_token (DEVICE_CODE_TTL=2): ${err.message}`);
}

for (const sig of ['SIGTERM', 'SIGINT']) {
  try {
    const s2 = await startServer();
    const exited = new Promise((resolve) => s2.child.once('exit', (code, signal) => resolve({ code, signal })));
    s2.child.kill(sig);
    const t = setTimeout(() => s2.child.kill('SIGKILL'), 5000);
    const { code, signal } = await exited;
    clearTimeout(t);
    if (code === 0) console.log(`ok server exits 0 on ${sig}`);
    else { failures += 1; console.log(`FAIL server exits 0 on ${sig}: code ${code} signal ${signal}`); }
  } catch (err) {
    failures += 1;
    console.log(`FAIL server exits 0 on ${sig}: ${err.message}`);
  }
}

console.log(failures ? `${failures} failure(s)` : 'all flows passed');
process.exit(failures ? 1 : 0);
