#!/usr/bin/env node
// jwtcheck.mjs: an independent JWT-SVID peer for lanyard's interop tests, built on `jose`.
//
// Usage:
//   node jwtcheck.mjs verify TOKEN_OR_FILE BUNDLE_JSON AUD [TD]
//       Verifies a JWT-SVID against the `use:"jwt-svid"` keys of a SPIFFE bundle (JWKS) file,
//       requires AUD among the token's audiences, and prints the `sub` on the first stdout line.
//       With TD, the `sub` must be in trust domain TD. Keys of any other `use` (x509-svid,
//       unknown) are never used to verify a token. Exit 0 accepted, 1 rejected (reason on stderr).
//   node jwtcheck.mjs mint KEY_PKCS8_PEM KID SUB AUD[,AUD...] [TTL_SECONDS]
//       Prints an ES256 JWT-SVID (header exactly {alg:"ES256",kid,typ:"JWT"}) with sub, aud,
//       iat and exp = now + TTL_SECONDS (default 300). TTL_SECONDS may be negative (expired).
//   node jwtcheck.mjs jwk KEY_PEM KID
//       Prints a SPIFFE bundle {"keys":[{"use":"jwt-svid","kid":KID,kty,crv,x,y}]} for the
//       public half of KEY_PEM (a private key in PKCS#8/SEC1 PEM, or a public key PEM).
//   node jwtcheck.mjs decode TOKEN_OR_FILE
//       Prints {"header":{...},"payload":{...}} without verifying anything.
// Exit codes: 0 ok, 1 rejected, 2 usage error, 3 I/O or internal error.
import { readFileSync, existsSync } from 'node:fs';
import { createPublicKey, createPrivateKey } from 'node:crypto';
import * as jose from 'jose';

// The algorithms JWT-SVID allows; everything else (none, HS*, EdDSA) is refused up front.
const SVID_ALGS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];

class Reject extends Error {}
function usage(msg, code = 2) {
  if (msg) process.stderr.write(`jwtcheck: ${msg}\n`);
  process.stderr.write(
    'usage: node jwtcheck.mjs verify TOKEN_OR_FILE BUNDLE_JSON AUD [TD]\n' +
    '       node jwtcheck.mjs mint KEY_PKCS8_PEM KID SUB AUD[,AUD...] [TTL_SECONDS]\n' +
    '       node jwtcheck.mjs jwk KEY_PEM KID\n' +
    '       node jwtcheck.mjs decode TOKEN_OR_FILE\n');
  process.exit(code);
}
function readText(path) {
  try { return readFileSync(path, 'utf8'); } catch (e) { throw new Error(`cannot read ${path}: ${e.message}`); }
}
function tokenArg(arg) {
  // A compact JWS is never a file name that exists; anything else is read as a file.
  const t = existsSync(arg) ? readText(arg) : arg;
  return t.trim();
}
function trustDomainOf(id) {
  const m = /^spiffe:\/\/([a-z0-9._-]+)(\/[A-Za-z0-9._\-/]*)?$/.exec(id);
  return m ? m[1] : null;
}

async function verify(tokenIn, bundlePath, aud, td) {
  const token = tokenArg(tokenIn);
  let bundle;
  try { bundle = JSON.parse(readText(bundlePath)); } catch (e) {
    if (e instanceof SyntaxError) throw new Reject(`bundle ${bundlePath} is not JSON: ${e.message}`);
    throw e;
  }
  if (!bundle || !Array.isArray(bundle.keys)) throw new Reject('bundle has no "keys" array');
  // Only jwt-svid keys with a kid are JWT authorities. Strip `use` (jose skips keys whose use
  // is not "sig") and anything that is not key material.
  const jwtKeys = bundle.keys.filter((k) => k && k.use === 'jwt-svid' && typeof k.kid === 'string' && k.kid !== '');
  if (jwtKeys.length === 0) throw new Reject('bundle has no jwt-svid authority');

  if (token.split('.').length !== 3) throw new Reject('token is not a JWS compact serialization');
  let header;
  try { header = jose.decodeProtectedHeader(token); } catch (e) { throw new Reject(`bad JOSE header: ${e.message}`); }
  if (!SVID_ALGS.includes(header.alg)) throw new Reject(`alg ${JSON.stringify(header.alg)} not allowed for a JWT-SVID`);
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') throw new Reject(`typ ${JSON.stringify(header.typ)} not allowed`);
  if (typeof header.kid !== 'string' || header.kid === '') throw new Reject('token has no kid');
  const jwk = jwtKeys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Reject(`no jwt-svid authority with kid ${JSON.stringify(header.kid)} in the bundle`);
  const { use, kid, x5c, x5t, 'x5t#S256': x5ts, key_ops, alg, ...material } = jwk; // eslint-disable-line no-unused-vars
  let key;
  try { key = await jose.importJWK(material, header.alg); } catch (e) {
    throw new Reject(`authority ${header.kid} cannot be used with ${header.alg}: ${e.message}`);
  }
  let payload;
  try {
    ({ payload } = await jose.jwtVerify(token, key, {
      algorithms: [header.alg], audience: aud, requiredClaims: ['sub', 'aud', 'exp'],
    }));
  } catch (e) {
    throw new Reject(`${e.code || 'error'}: ${e.message}`);
  }
  const std = trustDomainOf(payload.sub);
  if (!std) throw new Reject(`sub ${JSON.stringify(payload.sub)} is not a SPIFFE ID`);
  if (td && std !== td) throw new Reject(`sub is in trust domain ${std}, expected ${td}`);
  process.stdout.write(`${payload.sub}\n`);
}

async function mint(keyPath, kid, sub, audList, ttlArg) {
  const ttl = ttlArg === undefined ? 300 : Number(ttlArg);
  if (!Number.isInteger(ttl)) usage('TTL_SECONDS must be an integer');
  const pkcs8 = readText(keyPath);
  const key = await jose.importPKCS8(pkcs8, 'ES256');
  const auds = audList.split(',');
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new jose.SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
    .setSubject(sub)
    .setAudience(auds.length === 1 ? auds[0] : auds)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .sign(key);
  process.stdout.write(`${jwt}\n`);
}

async function jwk(keyPath, kid) {
  const pem = readText(keyPath);
  const pub = /PRIVATE KEY-----/.test(pem) ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
  const j = await jose.exportJWK(pub);
  const entry = { use: 'jwt-svid', kid, ...j };
  process.stdout.write(JSON.stringify({ keys: [entry] }) + '\n');
}

function decode(tokenIn) {
  const token = tokenArg(tokenIn);
  let header, payload;
  try { header = jose.decodeProtectedHeader(token); payload = jose.decodeJwt(token); } catch (e) {
    throw new Reject(`cannot decode token: ${e.message}`);
  }
  process.stdout.write(JSON.stringify({ header, payload }) + '\n');
}

const [mode, ...a] = process.argv.slice(2);
try {
  switch (mode) {
    case 'verify': if (a.length < 3 || a.length > 4) usage(); await verify(a[0], a[1], a[2], a[3]); break;
    case 'mint': if (a.length < 4 || a.length > 5) usage(); await mint(a[0], a[1], a[2], a[3], a[4]); break;
    case 'jwk': if (a.length !== 2) usage(); await jwk(a[0], a[1]); break;
    case 'decode': if (a.length !== 1) usage(); decode(a[0]); break;
    case '--help': case '-h': usage(undefined, 0); break;
    default: usage(mode ? `unknown mode ${mode}` : undefined);
  }
} catch (e) {
  if (e instanceof Reject) { process.stderr.write(`jwtcheck: rejected: ${e.message}\n`); process.exit(1); }
  process.stderr.write(`jwtcheck: error: ${e.message}\n`);
  process.exit(3);
}
