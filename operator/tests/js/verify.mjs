// Verifies JWTs against a remote JWKS with jose's createRemoteJWKSet, as a Convex-independent
// client would. Usage: node verify.mjs <jwksUrl> <issuer> <audience|-> <token>...
// Prints one JSON line per token: {"ok":true,"kid":...,"sub":...} or {"ok":false,"code":...}.
// Exits non-zero only on a usage error, so the caller asserts each result itself.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, issuer, audience, ...tokens] = process.argv.slice(2);
if (!jwksUrl || !issuer || !audience || tokens.length === 0) {
  console.error('usage: node verify.mjs <jwksUrl> <issuer> <audience|-> <token>...');
  process.exit(2);
}

const jwks = createRemoteJWKSet(new URL(jwksUrl));
for (const token of tokens) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer,
      audience: audience === '-' ? undefined : audience,
      algorithms: ['RS256'],
      clockTolerance: 5,
    });
    console.log(JSON.stringify({ ok: true, kid: protectedHeader.kid, sub: payload.sub }));
  } catch (error) {
    console.log(JSON.stringify({ ok: false, code: error.code ?? String(error) }));
  }
}
