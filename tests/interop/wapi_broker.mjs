// A SPIFFE Workload API client for lanyard's end-to-end tests, built only from @grpc/grpc-js,
// @grpc/proto-loader and the standard workloadapi.proto (nothing of lanyard's). Each mode prints
// one JSON line with what it received; the shell test asserts on it.
// Usage: node wapi_broker.mjs MODE SOCKET [ARGS...]
//   x509 SOCK OUTDIR           first FetchX509SVID message; writes svidN.pem/keyN.pem/bundle.pem
//   rotate SOCK WAIT_MS        FetchX509SVID stream: the first two messages (serials, times)
//   watch SOCK MS              FetchX509SVID stream for MS ms: message count and final status
//   watchids SOCK MS           FetchX509SVID stream for MS ms: IDs in the first and last message
//   bundles SOCK               first FetchX509Bundles and FetchJWTBundles messages
//   jwt SOCK AUD [ID]          FetchJWTSVID
//   validate SOCK AUD TOKEN    ValidateJWTSVID
//   status SOCK METHOD [nohdr] the gRPC status code a call ends with (first message ignored)
//   record SOCK MS OUTDIR      FetchX509SVID and FetchX509Bundles streams for MS ms: for every
//                              message the bundle's CA fingerprints (SHA-256 of each DER cert)
//                              and, per SVID, serial, issuer, authority key id and the bundle CA
//                              whose key verifies it; writes msgN-svid.pem and msgN-bundle.pem
//   until SOCK MS              retry FetchX509SVID for up to MS ms until one message arrives
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// The same standard proto the broker is built from (one copy in the tree).
const PROTO = path.join(here, '..', '..', 'broker', 'proto', 'workloadapi.proto');
const [mode, sock, ...rest] = process.argv.slice(2);
const def = protoLoader.loadSync(PROTO, {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    includeDirs: ['/usr/include'],
});
const Api = grpc.loadPackageDefinition(def).SpiffeWorkloadAPI;
const client = new Api('unix://' + sock, grpc.credentials.createInsecure());
const out = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
const die = (m) => { console.log(JSON.stringify({ error: m })); process.exit(1); };
const md = (hdr = true) => { const m = new grpc.Metadata(); if (hdr) m.set('workload.spiffe.io', 'true'); return m; };
const deadline = (ms) => new Date(Date.now() + ms);

// Split concatenated DER certificates by their outer SEQUENCE lengths (test-side only).
function splitDer(buf) {
    const certs = [];
    let off = 0;
    while (off < buf.length) {
        if (buf[off] !== 0x30) throw new Error('not DER at ' + off);
        let len = buf[off + 1], hdr = 2;
        if (len & 0x80) { const n = len & 0x7f; len = 0; for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i]; hdr = 2 + n; }
        certs.push(buf.subarray(off, off + hdr + len));
        off += hdr + len;
    }
    return certs;
}
const pem = (der, label) => `-----BEGIN ${label}-----\n${der.toString('base64').match(/.{1,64}/g).join('\n')}\n-----END ${label}-----\n`;
// The keyIdentifier of an extension (AKID 2.5.29.35: [0] inside a SEQUENCE; SKID 2.5.29.14: an
// OCTET STRING), found by its OID in the DER: test-side only, to name the signing CA.
function extKeyId(der, oidLast) {
    const oid = Buffer.from([0x06, 0x03, 0x55, 0x1d, oidLast]);
    const at = der.indexOf(oid);
    if (at < 0) return null;
    let p = at + oid.length;
    if (der[p] === 0x01) p += 3; // critical BOOLEAN
    if (der[p] !== 0x04) return null;
    p += 2; // extnValue OCTET STRING (short form: key ids are small)
    if (oidLast === 0x23) { if (der[p] !== 0x30) return null; p += 2; if (der[p] !== 0x80) return null; }
    else if (der[p] !== 0x04) return null;
    const len = der[p + 1];
    return Buffer.from(der.subarray(p + 2, p + 2 + len)).toString('hex');
}
const akid = (der) => extKeyId(der, 0x23);
const skid = (der) => extKeyId(der, 0x0e);
const certInfo = (der) => { const c = new X509Certificate(der); return { serial: c.serialNumber, nb: Date.parse(c.validFrom), na: Date.parse(c.validTo), san: c.subjectAltName }; };

function stream(method, req, onData, ms, hdr = true) {
    return new Promise((resolve) => {
        const call = client[method](req, md(hdr), { deadline: deadline(ms + 5000) });
        const timer = setTimeout(() => { call.cancel(); }, ms);
        call.on('data', (m) => onData(m, call));
        call.on('error', (e) => { clearTimeout(timer); resolve({ code: e.code, details: e.details }); });
        call.on('end', () => { clearTimeout(timer); resolve({ code: 0 }); });
    });
}

if (mode === 'x509') {
    const dir = rest[0];
    let first = null;
    const st = await stream('FetchX509SVID', {}, (m, call) => { if (!first) { first = m; call.cancel(); } }, 10000);
    if (!first) die('no message: status ' + st.code + ' ' + (st.details || ''));
    const svids = first.svids.map((s, i) => {
        const certs = splitDer(s.x509_svid);
        writeFileSync(path.join(dir, `svid${i}.pem`), certs.map((c) => pem(c, 'CERTIFICATE')).join(''));
        // The key must be unencrypted PKCS#8 DER (WAPI-18): node parses it as such or throws.
        const key = createPrivateKey({ key: s.x509_svid_key, format: 'der', type: 'pkcs8' });
        writeFileSync(path.join(dir, `key${i}.pem`), key.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
        const bundle = splitDer(s.bundle);
        writeFileSync(path.join(dir, 'bundle.pem'), bundle.map((c) => pem(c, 'CERTIFICATE')).join(''));
        const leaf = new X509Certificate(certs[0]);
        return { spiffe_id: s.spiffe_id, hint: s.hint, certs: certs.length, bundle_certs: bundle.length,
                 key_matches: leaf.checkPrivateKey(key), san: leaf.subjectAltName };
    });
    out({ n: svids.length, svids, federated: Object.keys(first.federated_bundles || {}) });
} else if (mode === 'rotate') {
    const wait = Number(rest[0]);
    const got = [];
    const st = await stream('FetchX509SVID', {}, (m, call) => {
        got.push({ at: Date.now(), ...certInfo(splitDer(m.svids[0].x509_svid)[0]) });
        if (got.length === 2) call.cancel();
    }, wait);
    out({ messages: got, status: st.code });
} else if (mode === 'watch') {
    let n = 0;
    const st = await stream('FetchX509SVID', {}, () => { n++; }, Number(rest[0]));
    out({ messages: n, status: st.code, details: st.details || '' });
} else if (mode === 'watchids') {
    // Stream for MS ms; report the SPIFFE IDs of the first and of the last message.
    let first = null, last = null;
    const st = await stream('FetchX509SVID', {}, (m) => {
        const ids = m.svids.map((x) => x.spiffe_id).sort();
        if (!first) first = ids;
        last = ids;
    }, Number(rest[0]));
    out({ first, last, status: st.code });
} else if (mode === 'bundles') {
    let xb = null, jb = null;
    await stream('FetchX509Bundles', {}, (m, call) => { xb = m; call.cancel(); }, 10000);
    await stream('FetchJWTBundles', {}, (m, call) => { jb = m; call.cancel(); }, 10000);
    if (!xb || !jb) die('missing bundle message');
    const x = Object.fromEntries(Object.entries(xb.bundles).map(([k, v]) => [k, splitDer(v).length]));
    const j = Object.fromEntries(Object.entries(jb.bundles).map(([k, v]) => [k, JSON.parse(v.toString())]));
    out({ x509: x, jwt: j });
} else if (mode === 'jwt') {
    const req = { audience: [rest[0]] };
    if (rest[1]) req.spiffe_id = rest[1];
    client.FetchJWTSVID(req, md(), { deadline: deadline(10000) }, (err, resp) => {
        if (err) out({ code: err.code, details: err.details });
        out({ code: 0, svids: resp.svids.map((s) => ({ spiffe_id: s.spiffe_id, token: s.svid, hint: s.hint })) });
    });
} else if (mode === 'validate') {
    client.ValidateJWTSVID({ audience: rest[0], svid: rest[1] }, md(), { deadline: deadline(10000) }, (err, resp) => {
        if (err) out({ code: err.code, details: err.details });
        const claims = {};
        for (const [k, v] of Object.entries(resp.claims.fields)) claims[k] = v[v.kind];
        out({ code: 0, spiffe_id: resp.spiffe_id, claims });
    });
} else if (mode === 'status') {
    const method = rest[0];
    const hdr = rest[1] !== 'nohdr';
    if (method === 'FetchJWTSVID') {
        client.FetchJWTSVID({ audience: rest[2] ? [rest[2]] : [] }, md(hdr), { deadline: deadline(10000) },
            (err) => out({ code: err ? err.code : 0, details: err ? err.details : '' }));
    } else {
        const st = await stream(method, {}, (m, call) => call.cancel(), 10000, hdr);
        out(st);
    }
} else if (mode === 'record') {
    const ms = Number(rest[0]);
    const dir = rest[1];
    const t0 = Date.now();
    const fp = (der) => createHash('sha256').update(der).digest('hex');
    const seen = new Map(); // fingerprint -> X509Certificate of every CA any bundle held
    const messages = [], bundles = [];
    const svidStream = stream('FetchX509SVID', {}, (m) => {
        const i = messages.length;
        const bundle = m.svids.length ? splitDer(m.svids[0].bundle) : [];
        for (const c of bundle) seen.set(fp(c), new X509Certificate(c));
        const svids = m.svids.map((s) => {
            const leafDer = splitDer(s.x509_svid)[0];
            const leaf = new X509Certificate(leafDer);
            let signer = null;
            for (const [f, ca] of seen) if (leaf.checkIssued(ca) && leaf.verify(ca.publicKey)) signer = f;
            return { spiffe_id: s.spiffe_id, serial: leaf.serialNumber, issuer: leaf.issuer,
                     akid: akid(leafDer), signer };
        });
        if (m.svids.length) {
            writeFileSync(path.join(dir, `msg${i}-svid.pem`), pem(splitDer(m.svids[0].x509_svid)[0], 'CERTIFICATE'));
            writeFileSync(path.join(dir, `msg${i}-bundle.pem`), bundle.map((c) => pem(c, 'CERTIFICATE')).join(''));
        }
        messages.push({ at: Date.now() - t0, bundle: bundle.map(fp), svids });
    }, ms);
    const bundleStream = stream('FetchX509Bundles', {}, (m) => {
        const b = {};
        for (const [td, v] of Object.entries(m.bundles)) b[td] = splitDer(v).map(fp);
        bundles.push({ at: Date.now() - t0, bundles: b });
    }, ms);
    const [st, bst] = await Promise.all([svidStream, bundleStream]);
    const skids = Object.fromEntries([...seen].map(([f, c]) => [f, skid(c.raw)]));
    out({ messages, bundles, skids, status: st.code, bundle_status: bst.code });
} else if (mode === 'until') {
    const end = Date.now() + Number(rest[0]);
    let last = null;
    while (Date.now() < end) {
        let got = null;
        const st = await stream('FetchX509SVID', {}, (m, call) => { got = m; call.cancel(); }, 3000);
        if (got) {
            const leaf = new X509Certificate(splitDer(got.svids[0].x509_svid)[0]);
            out({ ok: true, spiffe_id: got.svids[0].spiffe_id, serial: leaf.serialNumber });
        }
        last = st;
        await new Promise((r) => setTimeout(r, 200));
    }
    die('no SVID: ' + JSON.stringify(last));
} else {
    die('unknown mode ' + mode);
}
