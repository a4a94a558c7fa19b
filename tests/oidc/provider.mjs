// A real OpenID provider for DPP's OIDC sign-in tests (oidc-provider, a certified
// implementation), started by tests/auth/oidc_support.py. Not for any other use.
//
//   node provider.mjs CONFIG.json
//
// CONFIG: {"clients": [oidc-provider client metadata...],
//          "accounts": {"<login>": {"email": ..., "name": ..., "groups": [...]}, ...}}
// It listens on an ephemeral loopback port and prints one JSON line, {"issuer": "..."},
// when it is ready. The built-in development interactions (a login form that accepts any
// password for a known login, then a consent page) stand in for Entra ID's pages. ID
// tokens carry the profile, email and groups claims, as Entra ID's do.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts ?? {};

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `test-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

async function findAccount(ctx, id) {
  const account = accounts[id];
  if (!account) return undefined;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: account.email,
        email_verified: true,
        name: account.name,
        preferred_username: account.email,
        groups: account.groups ?? [],
      };
    },
  };
}

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: config.clients,
    findAccount,
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    // Claims in the ID token even when an access token is issued (what Entra ID does).
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub', 'groups'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    features: { devInteractions: { enabled: true } },
    renderError(ctx, out) {
      ctx.type = 'html';
      const text = JSON.stringify(out).replace(/[<>&]/g, (c) => `&#${c.charCodeAt(0)};`);
      ctx.body = `<h1>oidc-provider error</h1><pre>${text}</pre>`;
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
