// Independent Workload API client for lanyard's gRPC transport tests: @grpc/grpc-js and
// @grpc/proto-loader with the standard workloadapi.proto (nothing of ours), plus raw node:http2
// and node:net for the malformed cases grpc-js will not send.
// Usage: node wapi_client.mjs SOCKET CASE  -> exit 0 and "PASS ..." on success, else "FAIL ...".
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// The same standard proto the broker is built from (one copy in the tree).
const PROTO = path.join(here, '..', '..', 'broker', 'proto', 'workloadapi.proto');
const [sock, which] = process.argv.slice(2);
const STUB_ID = 'spiffe://example.test/stub/workload';

const def = protoLoader.loadSync(PROTO, {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    includeDirs: ['/usr/include'],
});
const Api = grpc.loadPackageDefinition(def).SpiffeWorkloadAPI;
const newClient = () => new Api('unix://' + sock, grpc.credentials.createInsecure());

function md(withHeader = true) {
    const m = new grpc.Metadata();
    if (withHeader) m.set('workload.spiffe.io', 'true');
    return m;
}
function fail(msg) { console.log('FAIL ' + msg); process.exit(1); }
function pass(msg) { console.log('PASS ' + msg); process.exit(0); }
function check(cond, msg) { if (!cond) fail(msg); }
const deadline = (ms) => new Date(Date.now() + ms);

function unaryJwt(client, aud, withHeader = true) {
    return new Promise((resolve) => {
        client.FetchJWTSVID({ audience: aud }, md(withHeader), { deadline: deadline(10000) },
            (err, resp) => resolve({ err, resp }));
    });
}

// Streams until `n` messages arrived (then cancels) or the call ends; resolves with what happened.
function streamCall(client, method, n, withHeader = true, timeoutMs = 10000) {
    return new Promise((resolve) => {
        const msgs = [], times = [];
        const call = client[method](method === 'FetchX509SVID' ? {} : {}, md(withHeader));
        const timer = setTimeout(() => call.cancel(), timeoutMs);
        call.on('data', (m) => {
            msgs.push(m); times.push(Date.now());
            if (msgs.length === n) call.cancel();
        });
        call.on('error', (err) => { clearTimeout(timer); resolve({ msgs, times, code: err.code, details: err.details }); });
        call.on('end', () => { clearTimeout(timer); resolve({ msgs, times, code: 0 }); });
    });
}

// A raw HTTP/2 request over the socket; resolves with response headers, trailers and body.
function rawH2(headers, body) {
    return new Promise((resolve, reject) => {
        const s = http2.connect('http://localhost', { createConnection: () => net.connect(sock) });
        s.on('error', reject);
        const req = s.request({ ':method': 'POST', ':path': '/SpiffeWorkloadAPI/FetchJWTSVID', ...headers });
        let resp = {}, trailers = {}, data = Buffer.alloc(0);
        req.on('response', (h) => { resp = h; });
        req.on('trailers', (t) => { trailers = t; });
        req.on('data', (d) => { data = Buffer.concat([data, d]); });
        req.on('close', () => { s.close(); resolve({ resp, trailers, data }); });
        req.on('error', reject);
        req.end(body);
    });
}
function frame(flag, len, payload) {
    const b = Buffer.alloc(5); b[0] = flag; b.writeUInt32BE(len, 1);
    return Buffer.concat([b, payload]);
}
// The status of a raw response: trailers-only puts grpc-status in the response headers.
const rawStatus = (r) => Number(r.trailers['grpc-status'] ?? r.resp['grpc-status']);

// Sends raw bytes on a fresh connection; resolves true if the server closes it within 3 s.
function rawBytes(bytes) {
    return new Promise((resolve) => {
        const c = net.connect(sock);
        const t = setTimeout(() => { c.destroy(); resolve(false); }, 3000);
        c.on('connect', () => c.write(bytes));
        c.on('data', () => {});
        c.on('error', () => {});
        c.on('close', () => { clearTimeout(t); resolve(true); });
    });
}

const cases = {
    async stream() {
        const r = await streamCall(newClient(), 'FetchX509SVID', 2);
        check(r.msgs.length === 2, `expected 2 messages, got ${r.msgs.length} (code ${r.code} ${r.details})`);
        const gap = r.times[1] - r.times[0];
        check(gap >= 900, `messages ${gap} ms apart, expected about 1000`);
        for (const [i, m] of r.msgs.entries()) {
            check(m.svids.length === 1, 'one svid per message');
            const s = m.svids[0];
            check(s.spiffe_id === STUB_ID, 'spiffe_id decodes: ' + s.spiffe_id);
            check(Buffer.isBuffer(s.x509_svid) && s.x509_svid.equals(Buffer.from([0x30, 3, 2, 1, i + 1])), 'x509_svid bytes');
            check(s.x509_svid_key.equals(Buffer.from([0x30, 3, 2, 1, 2])), 'x509_svid_key bytes');
            check(s.bundle.equals(Buffer.from([0x30, 3, 2, 1, 3])), 'bundle bytes');
            check(s.hint === `stub-${i + 1}`, 'hint: ' + s.hint);
            check(m.federated_bundles['spiffe://other.test']?.equals(Buffer.from([0x30, 3, 2, 1, 4])), 'federated_bundles map');
        }
        check(r.code === grpc.status.CANCELLED, `after cancel: code ${r.code}, expected CANCELLED`);
        pass(`2 messages ${gap} ms apart, fields decode, cancel -> CANCELLED`);
    },
    async stream_open() {
        // The stream stays open after the second message: no end within 2.5 s.
        const r = await streamCall(newClient(), 'FetchX509SVID', 3, true, 2500);
        check(r.msgs.length === 2 && r.code === grpc.status.CANCELLED, `msgs ${r.msgs.length} code ${r.code}`);
        pass('stream stays open after 2 messages');
    },
    async bundles() {
        const c = newClient();
        const a = await streamCall(c, 'FetchX509Bundles', 1);
        check(a.msgs.length === 1 && a.msgs[0].bundles['spiffe://example.test']?.length === 5, 'x509 bundles');
        const b = await streamCall(c, 'FetchJWTBundles', 1);
        check(b.msgs.length === 1 && b.msgs[0].bundles['spiffe://example.test']?.toString() === '{"keys":[]}', 'jwt bundles');
        pass('FetchX509Bundles and FetchJWTBundles stream a message');
    },
    async jwt() {
        const { err, resp } = await unaryJwt(newClient(), ['spiffe://example.test/db']);
        check(!err, 'unary error: ' + (err && err.message));
        check(resp.svids.length === 1 && resp.svids[0].spiffe_id === STUB_ID, 'svid spiffe_id');
        check(resp.svids[0].svid === 'stub.spiffe://example.test/db.sig', 'token echoes audience');
        check(resp.svids[0].hint === 'jwt-hint', 'hint');
        pass('FetchJWTSVID unary decodes');
    },
    async jwt_no_audience() {
        const { err } = await unaryJwt(newClient(), []);
        check(err && err.code === grpc.status.INVALID_ARGUMENT, 'expected 3, got ' + (err && err.code));
        pass('empty audience -> INVALID_ARGUMENT');
    },
    async no_header() {
        const c = newClient();
        const { err } = await unaryJwt(c, ['a'], false);
        check(err && err.code === grpc.status.INVALID_ARGUMENT, 'unary: expected 3, got ' + (err && err.code));
        check(/security header/.test(err.details), 'details passed through: ' + err.details);
        const r = await streamCall(c, 'FetchX509SVID', 1, false);
        check(r.msgs.length === 0 && r.code === grpc.status.INVALID_ARGUMENT, `stream: code ${r.code}`);
        pass('missing workload.spiffe.io -> INVALID_ARGUMENT (unary and stream)');
    },
    async unknown() {
        const c = newClient();
        const err = await new Promise((resolve) => c.makeUnaryRequest('/SpiffeWorkloadAPI/NoSuchMethod',
            (x) => x, (x) => x, Buffer.alloc(0), md(), (e) => resolve(e)));
        check(err && err.code === grpc.status.UNIMPLEMENTED, 'expected 12, got ' + (err && err.code));
        const r = await streamCall(c, 'FetchWITSVID', 1);
        check(r.code === grpc.status.UNIMPLEMENTED, 'FetchWITSVID (not served): ' + r.code);
        pass('unknown method -> UNIMPLEMENTED');
    },
    async deny() {
        const c = newClient();
        const r = await streamCall(c, 'FetchX509SVID', 1);
        check(r.msgs.length === 0 && r.code === grpc.status.PERMISSION_DENIED, `stream code ${r.code}`);
        check(/café 100% denied/.test(r.details), 'percent-encoded details decode: ' + r.details);
        const { err } = await unaryJwt(c, ['a']);
        check(err && err.code === grpc.status.PERMISSION_DENIED, 'unary: ' + (err && err.code));
        pass('deny -> PERMISSION_DENIED, UTF-8 message intact');
    },
    async concurrent() {
        const c = newClient();
        const t0 = Date.now();
        const unary = Array.from({ length: 100 }, (_, i) => unaryJwt(c, ['aud-' + i]));
        const streams = Array.from({ length: 50 }, () => streamCall(c, 'FetchX509Bundles', 1));
        const us = await Promise.all(unary);
        const ss = await Promise.all(streams);
        const bad = us.filter((u, i) => u.err || u.resp.svids[0].svid !== `stub.aud-${i}.sig`).length;
        check(bad === 0, `${bad} of 100 unary calls failed`);
        check(ss.every((s) => s.msgs.length === 1), 'every stream got its message');
        pass(`100 unary + 50 streaming calls at once in ${Date.now() - t0} ms`);
    },
    async http1() {
        const closed = await rawBytes('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
        check(closed, 'server kept an HTTP/1.1 connection open');
        const { err } = await unaryJwt(newClient(), ['after']);
        check(!err, 'server unusable after HTTP/1.1 client: ' + (err && err.message));
        pass('HTTP/1.1 client dropped, server keeps serving');
    },
    async garbage() {
        const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
        // A SETTINGS frame with a length that is not a multiple of 6: a connection error.
        const bad = Buffer.from([0, 0, 5, 4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]);
        const closed = await rawBytes(Buffer.concat([preface, bad]));
        check(closed, 'server kept a connection with a malformed frame open');
        const closed2 = await rawBytes(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]));
        check(closed2, 'server kept a connection with bad magic open');
        const { err } = await unaryJwt(newClient(), ['after']);
        check(!err, 'server unusable after garbage: ' + (err && err.message));
        pass('malformed frames and bad magic drop only that connection');
    },
    async idle() {
        // Connects and never speaks: the server (started with --handshake-ms 500) hangs up.
        const t0 = Date.now();
        const closed = await rawBytes(Buffer.alloc(0));
        check(closed, 'an idle connection was kept for 3 s');
        pass(`silent connection closed after ${Date.now() - t0} ms`);
    },
    async too_large() {
        const { err } = await unaryJwt(newClient(), ['x'.repeat(100 * 1024)]);
        check(err && err.code === grpc.status.RESOURCE_EXHAUSTED, 'expected 8, got ' + (err && err.code));
        const after = await unaryJwt(newClient(), ['after']);
        check(!after.err, 'server unusable after a large request');
        pass('100 KiB request -> RESOURCE_EXHAUSTED');
    },
    async content_type() {
        const r = await rawH2({ 'content-type': 'text/plain', 'workload.spiffe.io': 'true' }, 'hello');
        check(r.resp[':status'] === 415, 'expected HTTP 415, got ' + r.resp[':status']);
        pass('non-gRPC content-type -> HTTP 415');
    },
    async compressed() {
        const r = await rawH2({ 'content-type': 'application/grpc', 'workload.spiffe.io': 'true' },
            frame(1, 3, Buffer.from([0x0a, 1, 0x61])));
        check(r.resp[':status'] === 200 && rawStatus(r) === 13, 'expected grpc-status 13, got ' + rawStatus(r));
        const r2 = await rawH2({ 'content-type': 'application/grpc', 'grpc-encoding': 'gzip', 'workload.spiffe.io': 'true' },
            frame(1, 3, Buffer.from([0x0a, 1, 0x61])));
        check(rawStatus(r2) === 12, 'grpc-encoding gzip: expected 12, got ' + rawStatus(r2));
        pass('compressed message -> INTERNAL; grpc-encoding gzip -> UNIMPLEMENTED');
    },
    async bad_length() {
        const r = await rawH2({ 'content-type': 'application/grpc', 'workload.spiffe.io': 'true' },
            frame(0, 50, Buffer.from([0x0a, 1, 0x61])));
        check(rawStatus(r) === 13, 'length prefix past the body: expected 13, got ' + rawStatus(r));
        const r2 = await rawH2({ 'content-type': 'application/grpc', 'workload.spiffe.io': 'true' }, Buffer.from([0, 0]));
        check(rawStatus(r2) === 13, 'short prefix: expected 13, got ' + rawStatus(r2));
        const r3 = await rawH2({ 'content-type': 'application/grpc', 'workload.spiffe.io': 'true' },
            Buffer.concat([frame(0, 3, Buffer.from([0x0a, 1, 0x61])), frame(0, 0, Buffer.alloc(0))]));
        check(rawStatus(r3) === 13, 'two messages on a unary call: expected 13, got ' + rawStatus(r3));
        pass('malformed length prefixes -> INTERNAL');
    },
    async unavailable() {
        // Used while the server shuts down: an open stream ends with UNAVAILABLE, not a hang.
        const r = await streamCall(newClient(), 'FetchX509SVID', 99, true, 8000);
        check(r.msgs.length >= 1 && r.code === grpc.status.UNAVAILABLE, `msgs ${r.msgs.length} code ${r.code} ${r.details}`);
        pass(`open stream ended with UNAVAILABLE after ${r.msgs.length} message(s)`);
    },
};

if (!cases[which]) fail('unknown case ' + which);
cases[which]().catch((e) => fail(which + ': ' + (e && e.stack || e)));
