// Recording HTTP reverse proxy for lanyard's gateway tests: put it between the gateway and the
// upstream MCP server to see exactly what the gateway forwards.
//
//   node recorder.mjs LISTEN_PORT UPSTREAM_URL LOGFILE [--rewrite-host]
//
// Listens on 127.0.0.1:LISTEN_PORT (0: any free port) and prints one line
// "recorder listening on 127.0.0.1:PORT" once it does. Every request goes to the origin of
// UPSTREAM_URL (http: or https:, its path is not used) with the same method, path and query,
// headers and body; the response (status, headers, body) is streamed back as it arrives, chunk
// by chunk, so SSE streams and long-lived GET streams pass unbuffered. Only hop-by-hop
// headers (Connection, the headers it names, Keep-Alive, Proxy-*, TE, Trailer,
// Transfer-Encoding, Upgrade) are dropped, in both directions; Node sets its own framing.
// Host goes through unchanged, so the upstream sees the Host the gateway chose; with
// --rewrite-host it is replaced by UPSTREAM_URL's host:port.
//
// LOGFILE gets one JSON line per request, appended when the upstream's response headers
// arrive (or the request fails):
//   {"ts","method","url","headers":{lower-cased name: value, or [values] if repeated},
//    "rpc_method": JSON-RPC method of the body (an array for a batch; null for a JSON-RPC
//                  response or a non-JSON body),
//    "rpc_id", "rpc_target": params.name or params.uri of the request, when present,
//    "status", "content_type": of the upstream's response, or "error"}
// SIGTERM/SIGINT stop it.
import http from 'node:http';
import https from 'node:https';
import { appendFileSync } from 'node:fs';

const [portArg, upstreamArg, logFile, ...rest] = process.argv.slice(2);
if (!portArg || !upstreamArg || !logFile || !/^\d+$/.test(portArg)
    || rest.some((a) => a !== '--rewrite-host')) {
    process.stderr.write('usage: node recorder.mjs LISTEN_PORT UPSTREAM_URL LOGFILE [--rewrite-host]\n');
    process.exit(2);
}
const rewriteHost = rest.includes('--rewrite-host');
let upstream;
try { upstream = new URL(upstreamArg); } catch { process.stderr.write(`recorder: bad URL ${upstreamArg}\n`); process.exit(2); }
if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:') {
    process.stderr.write('recorder: UPSTREAM_URL must be http: or https:\n');
    process.exit(2);
}
const lib = upstream.protocol === 'https:' ? https : http;
const agent = new lib.Agent({ keepAlive: true });
const BODY_KEEP = 1 << 20; // bytes of each request body kept for the JSON-RPC method

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate',
    'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

// rawHeaders [name, value, ...] minus hop-by-hop headers (and those Connection names).
function endToEnd(raw) {
    const drop = new Set(HOP_BY_HOP);
    for (let i = 0; i < raw.length; i += 2) {
        if (raw[i].toLowerCase() === 'connection') {
            for (const t of raw[i + 1].split(',')) if (t.trim()) drop.add(t.trim().toLowerCase());
        }
    }
    const kept = [];
    for (let i = 0; i < raw.length; i += 2) {
        if (!drop.has(raw[i].toLowerCase())) kept.push(raw[i], raw[i + 1]);
    }
    return kept;
}

function headerMap(raw) {
    const m = {};
    for (let i = 0; i < raw.length; i += 2) {
        const k = raw[i].toLowerCase();
        if (!(k in m)) m[k] = raw[i + 1];
        else if (Array.isArray(m[k])) m[k].push(raw[i + 1]);
        else m[k] = [m[k], raw[i + 1]];
    }
    return m;
}

function rpcOf(body) {
    const info = { rpc_method: null };
    if (!body.length) return info;
    let j;
    try { j = JSON.parse(body.toString('utf8')); } catch { return info; }
    if (Array.isArray(j)) {
        info.rpc_method = j.map((m) => (m && typeof m.method === 'string' ? m.method : null));
        info.rpc_id = j.map((m) => (m && 'id' in m ? m.id : null));
        return info;
    }
    if (j && typeof j === 'object') {
        if (typeof j.method === 'string') info.rpc_method = j.method;
        if ('id' in j) info.rpc_id = j.id;
        const target = j.params?.name ?? j.params?.uri;
        if (typeof target === 'string') info.rpc_target = target;
    }
    return info;
}

const server = http.createServer((req, res) => {
    const entry = { ts: new Date().toISOString(), method: req.method, url: req.url, headers: headerMap(req.rawHeaders) };
    const chunks = [];
    let kept = 0;
    let bodyDone = false;
    let headDone = false;
    let logged = false;
    const log = () => {
        if (logged) return;
        logged = true;
        Object.assign(entry, rpcOf(Buffer.concat(chunks)));
        appendFileSync(logFile, JSON.stringify(entry) + '\n');
    };
    const maybeLog = () => { if (bodyDone && headDone) log(); };

    const headers = [];
    const forwarded = endToEnd(req.rawHeaders);
    for (let i = 0; i < forwarded.length; i += 2) {
        if (rewriteHost && forwarded[i].toLowerCase() === 'host') continue;
        headers.push(forwarded[i], forwarded[i + 1]);
    }
    if (rewriteHost) headers.push('Host', upstream.host);
    const preq = lib.request({
        protocol: upstream.protocol, hostname: upstream.hostname, port: upstream.port,
        method: req.method, path: req.url, headers, agent, setHost: false,
        rejectUnauthorized: false,
    }, (pres) => {
        entry.status = pres.statusCode;
        entry.content_type = pres.headers['content-type'] ?? null;
        headDone = true;
        maybeLog();
        res.writeHead(pres.statusCode, pres.statusMessage, endToEnd(pres.rawHeaders));
        res.flushHeaders();
        pres.pipe(res); // each chunk is written as it arrives
        pres.on('error', () => res.destroy());
    });
    preq.on('error', (err) => {
        entry.error = err.code ?? err.message;
        bodyDone = true;
        headDone = true;
        log();
        if (!res.headersSent) {
            res.writeHead(502, { 'content-type': 'text/plain' });
            res.end(`recorder: upstream error ${entry.error}\n`);
        } else {
            res.destroy();
        }
    });
    req.on('data', (c) => { if (kept < BODY_KEEP) { chunks.push(c); kept += c.length; } });
    req.on('end', () => { bodyDone = true; maybeLog(); });
    req.pipe(preq);
    // The client went away before the response ended (e.g. it closed a GET stream): end the
    // upstream request too. Not req's 'close', which fires as soon as the body is read.
    res.on('close', () => {
        if (!res.writableFinished) preq.destroy();
        if (!logged) { bodyDone = true; headDone = true; entry.error ??= 'client closed'; log(); }
    });
});
server.keepAliveTimeout = 30000;
server.on('clientError', (err, socket) => { socket.destroy(); });
server.listen(Number(portArg), '127.0.0.1', () => {
    process.stdout.write(`recorder listening on 127.0.0.1:${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => { server.closeAllConnections?.(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 500).unref(); });
}
