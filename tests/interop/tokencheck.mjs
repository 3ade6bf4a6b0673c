#!/usr/bin/env node
// tokencheck.mjs: an independent peer for lanyard's user access tokens (RFC 9068 JWT profile,
// typ at+jwt), built on `jose`, for tests/interop/token_interop.sh.
//
// Usage:
//   node tokencheck.mjs verify TOKEN_OR_FILE BUNDLE_JSON AUD ISS CLIENT [CERT_PEM]
//       Verifies the token against the `use:"jwt-svid"` key of a SPIFFE bundle whose kid the
//       header names: jose checks typ at+jwt, the signature, iss = ISS, AUD among aud, exp/nbf;
//       then client_id (and azp when present) must be CLIENT, and with CERT_PEM the token must
//       carry cnf.x5t#S256 = base64url(SHA-256 of that certificate's DER) (RFC 8705 §3.1).
//       Prints the sub on the first stdout line. Exit 0 accepted, 1 rejected.
//   node tokencheck.mjs mint KEY_PKCS8_PEM KID ISS SUB AUD[,AUD...] CLIENT [OPTIONS]
//       Prints an ES256 token with header {alg:"ES256",kid,typ} and claims iss, sub, aud,
//       client_id, azp, exp, nbf, iat, jti. OPTIONS: --ttl SECONDS (default 300, may be
//       negative), --typ T (default at+jwt), --cert CERT_PEM (adds cnf.x5t#S256), --no-azp.
// Exit codes: 0 ok, 1 rejected, 2 usage error, 3 I/O or internal error.
import { readFileSync, existsSync } from 'node:fs';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import * as jose from 'jose';

const ALGS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];

class Reject extends Error {}
function usage(msg) {
  if (msg) process.stderr.write(`tokencheck: ${msg}\n`);
  process.stderr.write(
    'usage: node tokencheck.mjs verify TOKEN_OR_FILE BUNDLE_JSON AUD ISS CLIENT [CERT_PEM]\n' +
    '       node tokencheck.mjs mint KEY_PKCS8_PEM KID ISS SUB AUD[,AUD...] CLIENT ' +
    '[--ttl S] [--typ T] [--cert CERT_PEM] [--no-azp]\n');
  process.exit(2);
}
function readText(path) {
  try { return readFileSync(path, 'utf8'); } catch (e) { throw new Error(`cannot read ${path}: ${e.message}`); }
}
function certThumbprint(path) {
  const der = new X509Certificate(readFileSync(path)).raw;
  return createHash('sha256').update(der).digest('base64url');
}

async function verify(tokenIn, bundlePath, aud, iss, client, certPath) {
  const token = (existsSync(tokenIn) ? readText(tokenIn) : tokenIn).trim();
  let bundle;
  try { bundle = JSON.parse(readText(bundlePath)); } catch (e) {
    if (e instanceof SyntaxError) throw new Reject(`bundle is not JSON: ${e.message}`);
    throw e;
  }
  const keys = (bundle.keys || []).filter((k) => k && k.use === 'jwt-svid' && typeof k.kid === 'string');
  let header;
  try { header = jose.decodeProtectedHeader(token); } catch (e) { throw new Reject(`bad JOSE header: ${e.message}`); }
  if (!ALGS.includes(header.alg)) throw new Reject(`alg ${JSON.stringify(header.alg)} not allowed`);
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Reject(`no jwt-svid authority with kid ${JSON.stringify(header.kid)}`);
  const { use, kid, x5c, alg, key_ops, ...material } = jwk; // eslint-disable-line no-unused-vars
  const key = await jose.importJWK(material, header.alg);
  let payload;
  try {
    ({ payload } = await jose.jwtVerify(token, key, {
      algorithms: [header.alg], typ: 'at+jwt', issuer: iss, audience: aud,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
    }));
  } catch (e) {
    throw new Reject(`${e.code || 'error'}: ${e.message}`);
  }
  if (payload.client_id !== client) throw new Reject(`client_id ${JSON.stringify(payload.client_id)} is not ${client}`);
  if ('azp' in payload && payload.azp !== client) throw new Reject(`azp ${JSON.stringify(payload.azp)} is not ${client}`);
  if (certPath) {
    const want = certThumbprint(certPath);
    const got = payload.cnf && payload.cnf['x5t#S256'];
    if (got !== want) throw new Reject(`cnf.x5t#S256 ${JSON.stringify(got)} is not the certificate's ${want}`);
  }
  process.stdout.write(`${payload.sub}\n`);
}

async function mint(keyPath, kid, iss, sub, audList, client, opts) {
  let ttl = 300;
  let typ = 'at+jwt';
  let cert = null;
  let azp = true;
  for (let i = 0; i < opts.length; i++) {
    switch (opts[i]) {
      case '--ttl': ttl = Number(opts[++i]); if (!Number.isInteger(ttl)) usage('--ttl needs an integer'); break;
      case '--typ': typ = opts[++i]; break;
      case '--cert': cert = opts[++i]; break;
      case '--no-azp': azp = false; break;
      default: usage(`unknown option ${opts[i]}`);
    }
  }
  const key = await jose.importPKCS8(readText(keyPath), 'ES256');
  const auds = audList.split(',');
  const now = Math.floor(Date.now() / 1000);
  const claims = { client_id: client };
  if (azp) claims.azp = client;
  if (cert) claims.cnf = { 'x5t#S256': certThumbprint(cert) };
  const jwt = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid, typ })
    .setIssuer(iss)
    .setSubject(sub)
    .setAudience(auds.length === 1 ? auds[0] : auds)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + ttl)
    .setJti(randomBytes(16).toString('hex'))
    .sign(key);
  process.stdout.write(`${jwt}\n`);
}

const [mode, ...a] = process.argv.slice(2);
try {
  switch (mode) {
    case 'verify': if (a.length < 5 || a.length > 6) usage(); await verify(...a); break;
    case 'mint': if (a.length < 6) usage(); await mint(a[0], a[1], a[2], a[3], a[4], a[5], a.slice(6)); break;
    default: usage(mode ? `unknown mode ${mode}` : undefined);
  }
} catch (e) {
  if (e instanceof Reject) { process.stderr.write(`tokencheck: rejected: ${e.message}\n`); process.exit(1); }
  process.stderr.write(`tokencheck: error: ${e.message}\n`);
  process.exit(3);
}
