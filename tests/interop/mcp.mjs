// Dev-only MCP server for specauth interop tests, built with the official MCP TypeScript SDK
// (`@modelcontextprotocol/sdk`, pinned in package.json). Its endpoint requires a bearer token
// issued by the oidc-provider peer (server.mjs) for this server's own URL (RFC 8707 audience):
//
//   * POST /mcp                                        Streamable HTTP (stateless), tool `echo`
//   * GET  /.well-known/oauth-protected-resource/mcp   RFC 9728 metadata (the SDK's router)
//   * 401 + WWW-Authenticate: Bearer …, scope="mcp:tools", resource_metadata="…" without a token
//
// Tokens are checked by introspection at the peer (as `basic-client`): active, not expired,
// audience = this server's URL, scope `mcp:tools`.
//
// Contract with the harness: env ISSUER (the peer's issuer), PORT (0 = free port). stdout
// carries exactly one line, `READY http://127.0.0.1:<port>/mcp`. Exits on SIGTERM/SIGINT and
// when stdin (a pipe) closes. NEVER use this for anything real.

import http from 'node:http';

for (const m of ['log', 'info', 'debug']) console[m] = (...args) => console.error(...args);

const { McpServer } = await import('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { requireBearerAuth } = await import('@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js');
const { mcpAuthMetadataRouter, getOAuthProtectedResourceMetadataUrl } = await import('@modelcontextprotocol/sdk/server/auth/router.js');
const { InvalidTokenError } = await import('@modelcontextprotocol/sdk/server/auth/errors.js');
const { createMcpExpressApp } = await import('@modelcontextprotocol/sdk/server/express.js');
const { z } = await import('zod');

const ISSUER = process.env.ISSUER;
if (!ISSUER) {
  console.error('mcp.mjs: set ISSUER to the peer issuer');
  process.exit(2);
}
const SCOPE = 'mcp:tools';

const metadata = await (await fetch(`${ISSUER}/.well-known/openid-configuration`)).json();

const server = http.createServer();
let app = (req, res) => { res.statusCode = 503; res.end('starting'); };
server.on('request', (req, res) => app(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number.parseInt(process.env.PORT ?? '0', 10) || 0, '127.0.0.1', resolve);
});
const RESOURCE = new URL(`http://127.0.0.1:${server.address().port}/mcp`);
// A second endpoint for step-up (MCP authorization, "Scope challenge handling"): its 401 asks
// for `mcp:tools`, then a token without `mcp:admin` gets 403 insufficient_scope naming both.
const ADMIN = new URL(`http://127.0.0.1:${server.address().port}/mcp-admin`);

const verifierFor = (resource) => ({
  async verifyAccessToken(token) {
    const reply = await fetch(metadata.introspection_endpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('basic-client:basic-secret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }),
    });
    const info = await reply.json();
    const aud = [].concat(info.aud ?? []);
    if (!info.active) throw new InvalidTokenError('Token is not active');
    if (!aud.includes(resource.href)) throw new InvalidTokenError(`Token is not for ${resource.href}`);
    return {
      token,
      clientId: info.client_id,
      scopes: String(info.scope ?? '').split(' ').filter(Boolean),
      expiresAt: info.exp,
      resource,
    };
  },
});
const verifier = verifierFor(RESOURCE);

const express = createMcpExpressApp();
express.use(mcpAuthMetadataRouter({
  oauthMetadata: metadata,
  resourceServerUrl: RESOURCE,
  scopesSupported: [SCOPE],
  resourceName: 'specauth interop MCP server',
}));
express.use(mcpAuthMetadataRouter({
  oauthMetadata: metadata,
  resourceServerUrl: ADMIN,
  scopesSupported: [SCOPE, 'mcp:admin'],
  resourceName: 'specauth interop MCP server (admin)',
}));
const handle = async (req, res) => {
  const mcp = new McpServer({ name: 'specauth-interop', version: '0.0.0' });
  mcp.registerTool('echo', {
    description: 'Echoes its text',
    inputSchema: { text: z.string() },
  }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => { transport.close(); mcp.close(); });
  await mcp.connect(transport);
  await transport.handleRequest(req, res, req.body);
};
express.post('/mcp', requireBearerAuth({
  verifier,
  requiredScopes: [SCOPE],
  resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(RESOURCE),
}), handle);
const adminMetadata = getOAuthProtectedResourceMetadataUrl(ADMIN);
const adminAuth = requireBearerAuth({
  verifier: verifierFor(ADMIN),
  requiredScopes: [SCOPE, 'mcp:admin'],
  resourceMetadataUrl: adminMetadata,
});
express.post('/mcp-admin', (req, res, next) => {
  if (!req.headers.authorization) {
    res.set('WWW-Authenticate', `Bearer error="invalid_token", error_description="Missing Authorization header", scope="${SCOPE}", resource_metadata="${adminMetadata}"`);
    res.status(401).json({ error: 'invalid_token' });
    return;
  }
  adminAuth(req, res, next);
}, handle);
app = express;

process.stdout.write(`READY ${RESOURCE.href}\n`);

const stop = () => { server.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
