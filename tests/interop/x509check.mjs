#!/usr/bin/env node
// x509check.mjs: an X.509 fact dump for lanyard's interop tests, built on @peculiar/x509 (a
// pure-JS ASN.1 parser, so it does not share lanyard's or OpenSSL's certificate parser).
//
// Usage: node x509check.mjs CERT_PEM [ISSUER_PEM]
//   CERT_PEM    the certificate to inspect (the first certificate in the file is used)
//   ISSUER_PEM  optional; the certificate whose public key should have signed CERT_PEM
//               (first certificate in the file). Without it, CERT_PEM is checked as
//               self-signed (against its own public key).
// Prints one JSON object on stdout and exits 0; exits 2 on a usage error and 3 when a file
// cannot be read or parsed. The shell tests assert on the JSON with `node -e`.
import 'reflect-metadata';
import { webcrypto, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

const EKU_NAMES = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
  '2.5.29.37.0': 'anyExtendedKeyUsage',
};
const OID = {
  san: '2.5.29.17', bc: '2.5.29.19', ku: '2.5.29.15', eku: '2.5.29.37',
  skid: '2.5.29.14', akid: '2.5.29.35',
};

function die(code, msg) { process.stderr.write(`x509check: ${msg}\n`); process.exit(code); }

function firstCert(path) {
  let text;
  try { text = readFileSync(path, 'latin1'); } catch (e) { die(3, `cannot read ${path}: ${e.message}`); }
  const m = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/);
  if (!m) die(3, `${path}: no PEM CERTIFICATE block`);
  try { return new x509.X509Certificate(m[0]); } catch (e) { die(3, `${path}: cannot parse certificate: ${e.message}`); }
}

function countCerts(path) {
  const m = readFileSync(path, 'latin1').match(/-----BEGIN CERTIFICATE-----/g);
  return m ? m.length : 0;
}

function hex(buf) { return Buffer.from(buf).toString('hex'); }

function serialFacts(serialHex) {
  const h = serialHex.replace(/^0+/, '');
  const v = h === '' ? 0n : BigInt('0x' + h);
  return { serial_hex: h === '' ? '0' : h.toLowerCase(), serial_bits: v === 0n ? 0 : v.toString(2).length };
}

async function facts(cert, issuer) {
  const out = {
    subject: cert.subject,
    issuer: cert.issuer,
    ...serialFacts(cert.serialNumber),
    not_before: cert.notBefore.toISOString(),
    not_after: cert.notAfter.toISOString(),
    not_before_unix: Math.floor(cert.notBefore.getTime() / 1000),
    not_after_unix: Math.floor(cert.notAfter.getTime() / 1000),
    public_key_algorithm: cert.publicKey.algorithm.name +
      (cert.publicKey.algorithm.namedCurve ? '/' + cert.publicKey.algorithm.namedCurve : ''),
    spki_sha256: createHash('sha256').update(Buffer.from(cert.publicKey.rawData)).digest('hex'),
    signature_algorithm: cert.signatureAlgorithm.name +
      (cert.signatureAlgorithm.hash ? '/' + cert.signatureAlgorithm.hash.name : ''),
    extension_oids: cert.extensions.map((e) => e.type),
    duplicate_extensions: [],
  };
  const seen = new Set();
  for (const e of cert.extensions) {
    if (seen.has(e.type)) out.duplicate_extensions.push(e.type);
    seen.add(e.type);
  }

  // subjectAltName
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san ? san.names.toJSON() : [];
  out.san = {
    present: !!san,
    critical: san ? !!san.critical : false,
    uris: names.filter((n) => n.type === 'url').map((n) => n.value),
    dns: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ips: names.filter((n) => n.type === 'ip').map((n) => n.value),
    other_types: names.filter((n) => !['url', 'dns', 'ip'].includes(n.type)).map((n) => n.type),
  };
  out.uri_sans = out.san.uris;
  out.dns_sans = out.san.dns;

  // basicConstraints
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  out.basic_constraints = {
    present: !!bc,
    ca: bc ? !!bc.ca : false,
    critical: bc ? !!bc.critical : false,
    path_len: bc && bc.pathLength !== undefined ? bc.pathLength : null,
  };

  // keyUsage
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const usages = [];
  if (ku) {
    for (const [name, bit] of Object.entries(x509.KeyUsageFlags)) {
      if (typeof bit === 'number' && (ku.usages & bit)) usages.push(name);
    }
  }
  out.key_usage = { present: !!ku, critical: ku ? !!ku.critical : false, usages };

  // extendedKeyUsage
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const ekuOids = eku ? eku.usages.map(String) : [];
  out.eku = {
    present: !!eku,
    critical: eku ? !!eku.critical : false,
    oids: ekuOids,
    names: ekuOids.map((o) => EKU_NAMES[o] || o),
  };

  // key identifiers
  const skid = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const akid = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  out.skid = skid ? skid.keyId.toLowerCase() : null;
  out.akid = akid && akid.keyId ? akid.keyId.toLowerCase() : null;

  // issuer relationship and signature
  const signer = issuer || cert;
  const signerSkid = signer.getExtension(x509.SubjectKeyIdentifierExtension);
  out.issuer_given = !!issuer;
  out.issuer_skid = signerSkid ? signerSkid.keyId.toLowerCase() : null;
  out.akid_matches_issuer_skid = out.akid !== null && out.issuer_skid !== null && out.akid === out.issuer_skid;
  out.issuer_name_matches = cert.issuer === signer.subject;
  try {
    out.signature_valid = await cert.verify({ publicKey: signer, signatureOnly: true });
  } catch (e) {
    out.signature_valid = false;
    out.signature_error = e.message;
  }
  return out;
}

const args = process.argv.slice(2);
if (args.length < 1 || args.length > 2 || args[0] === '--help' || args[0] === '-h') {
  process.stderr.write('usage: node x509check.mjs CERT_PEM [ISSUER_PEM]\n');
  process.exit(args[0] === '--help' || args[0] === '-h' ? 0 : 2);
}
const cert = firstCert(args[0]);
const issuer = args[1] ? firstCert(args[1]) : null;
const result = await facts(cert, issuer);
result.certs_in_file = countCerts(args[0]);
process.stdout.write(JSON.stringify(result, null, 1) + '\n');
