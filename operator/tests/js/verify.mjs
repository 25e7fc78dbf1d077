// Verifies JWTs against a remote JWKS with jose's createRemoteJWKSet, as a Convex-independent
// client would. Usage: node verify.mjs <jwksUrl> <issuer> <audience|-> <token>...
// Prints one JSON line per token: {"ok":true,"kid":...,"sub":...} or {"ok":false,"code":...}.
// Exits non-zero only on a usage error, so the caller asserts each result itself.
//
// WCA_RESOLVE=<host>=<ip> makes the JWKS fetch connect to <ip> for <host> (TLS still verifies
// <host>, through SNI), as if DNS said so: the end-to-end tests reach the local node's ingress
// controller this way, with no resolver involved. NODE_EXTRA_CA_CERTS trusts their test CA.
import https from 'node:https';
import http from 'node:http';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';

const [jwksUrl, issuer, audience, ...tokens] = process.argv.slice(2);
if (!jwksUrl || !issuer || !audience || tokens.length === 0) {
  console.error('usage: node verify.mjs <jwksUrl> <issuer> <audience|-> <token>...');
  process.exit(2);
}

const options = {};
const resolve = process.env.WCA_RESOLVE;
if (resolve) {
  const [host, address] = resolve.split('=');
  const lookup = (hostname, opts, callback) => {
    if (hostname !== host) return callback(new Error(`unexpected host ${hostname}`));
    return opts.all ? callback(null, [{ address, family: 4 }]) : callback(null, address, 4);
  };
  // A fetch that connects to the given address: node's https (it honours NODE_EXTRA_CA_CERTS).
  options[customFetch] = (url, { headers, method }) =>
    new Promise((done, fail) => {
      const target = new URL(url);
      const client = target.protocol === 'https:' ? https : http;
      const request = client.request(target, { method, headers: Object.fromEntries(headers), lookup }, (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(response.headers)) responseHeaders.set(name, String(value));
          done(new Response(Buffer.concat(chunks), { status: response.statusCode, headers: responseHeaders }));
        });
      });
      request.on('error', fail);
      request.end();
    });
}

const jwks = createRemoteJWKSet(new URL(jwksUrl), options);
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
