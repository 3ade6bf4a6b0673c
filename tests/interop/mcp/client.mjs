// Command-line MCP client for lanyard's gateway tests, built on the MCP TypeScript SDK
// (Client + StreamableHTTPClientTransport) with undici for mutual TLS.
//
//   node client.mjs --url URL [options] OP [OP ARGS]... [OP [OP ARGS]...]...
//
// Options:
//   --url URL              the MCP endpoint (http:// or https://)
//   --cert FILE --key FILE client certificate and key (PEM) presented on every request
//   --ca FILE              CA bundle (PEM) that the server's certificate must chain to
//   --servername NAME      TLS server name (SNI and certificate check) if not the URL's host
//   --token TOKEN | --token-file FILE
//                          sent as "Authorization: Bearer TOKEN" on every request
//   --session ID           reuse an existing Mcp-Session-Id: no initialize, but the
//                          MCP-Protocol-Version header is still sent (see --protocol-version)
//   --protocol-version V   the version sent with --session (default: the SDK's latest)
//   --caps JSON            client capabilities to declare in initialize (default {})
//   --timeout MS           per-request timeout (default 30000)
//   --name NAME            clientInfo.name (default lanyard-test-client)
//
// Operations, run in order; a failed one does not stop the next:
//   list-tools | list-prompts | list-resources | ping
//   call NAME JSON_ARGS        tools/call
//   read URI                   resources/read
//   get-prompt NAME [JSON_ARGS]
//   progress DURATION_S STEPS  tools/call trigger-long-running-operation with a progressToken;
//                              the result holds the arrival time (ms since the call started)
//                              of every notifications/progress and of the result
//   open-stream                open the standalone GET SSE stream now (with --session the SDK
//                              does not open it, since it follows notifications/initialized)
//   sleep MS                   wait, e.g. to let server-initiated messages arrive
//   print-session              the current session id and protocol version
//   terminate                  DELETE the session
//
// Output: one JSON line per operation on stdout, first {"op":"connect",...}:
//   {"op":OP,"ok":true,"result":...}
//   {"op":OP,"ok":false,"status":HTTP_STATUS?,"code":JSONRPC_CODE?,"message":TEXT}
// and last {"op":"transport-errors","errors":[{"message","status"?,"code"?}...],
//           "http":[{"method","status"|"error"}...],"server_messages":[{"method","ms"}...]}
// "errors" is everything the transport reported through onerror (a failed GET stream shows
// up only there: the SDK carries on without it). "http" lists every request the transport
// made, in order, with its HTTP status. "server_messages" lists server-initiated requests and
// notifications other than progress.
// Exit code: 0 when every operation ran (some may have failed), 1 when connect failed,
// 2 on a usage error.
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
    McpError, LATEST_PROTOCOL_VERSION, ListRootsRequestSchema, CreateMessageRequestSchema,
    ElicitRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { Agent, fetch as undiciFetch, Headers as UndiciHeaders } from 'undici';

const t0 = performance.now();
const now = () => Math.round(performance.now() - t0);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

function usage(msg) {
    process.stderr.write(`client.mjs: ${msg}\n` +
        'usage: node client.mjs --url URL [--cert F --key F] [--ca F] [--servername N] ' +
        '[--token T | --token-file F] [--session ID] [--protocol-version V] [--caps JSON] ' +
        '[--timeout MS] [--name NAME] OP...\n' +
        'ops: list-tools list-prompts list-resources ping | call NAME JSON | read URI | ' +
        'get-prompt NAME [JSON] | progress DURATION_S STEPS | open-stream | sleep MS | ' +
        'print-session | terminate\n');
    process.exit(2);
}

function parseJson(text, what) {
    try { return JSON.parse(text); } catch (e) { return usage(`${what} is not JSON: ${e.message}`); }
}

// ---- command line ---------------------------------------------------------------------------
const opt = { caps: {}, timeout: 30000, name: 'lanyard-test-client', protocolVersion: LATEST_PROTOCOL_VERSION };
const argv = process.argv.slice(2);
let i = 0;
const valueOf = (flag) => { if (i + 1 >= argv.length) usage(`${flag} needs a value`); return argv[++i]; };
for (; i < argv.length && argv[i].startsWith('--'); i++) {
    const a = argv[i];
    switch (a) {
    case '--url': opt.url = valueOf(a); break;
    case '--cert': opt.cert = valueOf(a); break;
    case '--key': opt.key = valueOf(a); break;
    case '--ca': opt.ca = valueOf(a); break;
    case '--servername': opt.servername = valueOf(a); break;
    case '--token': opt.token = valueOf(a); break;
    case '--token-file': opt.tokenFile = valueOf(a); break;
    case '--session': opt.session = valueOf(a); break;
    case '--protocol-version': opt.protocolVersion = valueOf(a); break;
    case '--caps': opt.caps = parseJson(valueOf(a), '--caps'); break;
    case '--timeout': opt.timeout = Number(valueOf(a)); break;
    case '--name': opt.name = valueOf(a); break;
    case '--': i++; break;
    default: usage(`unknown option ${a}`);
    }
    if (a === '--') break;
}
if (!opt.url) usage('--url is required');
let url;
try { url = new URL(opt.url); } catch { usage(`bad --url ${opt.url}`); }
if (!Number.isFinite(opt.timeout) || opt.timeout <= 0) usage('--timeout must be a positive number of ms');
if (Boolean(opt.cert) !== Boolean(opt.key)) usage('--cert and --key go together');
if (opt.token !== undefined && opt.tokenFile !== undefined) usage('--token and --token-file exclude each other');
if (typeof opt.caps !== 'object' || opt.caps === null || Array.isArray(opt.caps)) usage('--caps must be a JSON object');

// Operations: validate them all before connecting, so a usage error never half-runs.
const arity = {
    'list-tools': 0, 'list-prompts': 0, 'list-resources': 0, ping: 0, 'print-session': 0,
    terminate: 0, 'open-stream': 0, call: 2, read: 1, progress: 2, sleep: 1, 'get-prompt': 1,
};
const ops = [];
while (i < argv.length) {
    const name = argv[i++];
    if (!(name in arity)) usage(`unknown operation ${name}`);
    const args = argv.slice(i, i + arity[name]);
    if (args.length < arity[name]) usage(`${name} needs ${arity[name]} argument(s)`);
    i += arity[name];
    if (name === 'get-prompt' && i < argv.length && argv[i].trimStart().startsWith('{')) args.push(argv[i++]);
    if (name === 'call') args[1] = parseJson(args[1], 'call arguments');
    if (name === 'get-prompt' && args.length > 1) args[1] = parseJson(args[1], 'prompt arguments');
    if (name === 'progress' || name === 'sleep') {
        for (const n of args) if (!Number.isFinite(Number(n)) || Number(n) < 0) usage(`${name}: ${n} is not a number`);
    }
    ops.push({ name, args });
}

// ---- transport ------------------------------------------------------------------------------
let token = opt.token;
if (opt.tokenFile !== undefined) {
    try { token = readFileSync(opt.tokenFile, 'utf8').trim(); } catch (e) { usage(`--token-file: ${e.message}`); }
}
const connectOpts = {};
try {
    if (opt.cert) { connectOpts.cert = readFileSync(opt.cert); connectOpts.key = readFileSync(opt.key); }
    if (opt.ca) connectOpts.ca = readFileSync(opt.ca);
} catch (e) { usage(e.message); }
if (opt.servername) connectOpts.servername = opt.servername;
// One undici Agent for every request. The SDK applies requestInit to POST and DELETE only; its
// standalone GET stream goes through the `fetch` option alone. Putting the dispatcher (and the
// bearer token) in our fetch is what makes GET present the certificate too.
const dispatcher = new Agent({ connect: connectOpts });
const httpLog = [];
const inflight = new Set();
const authValue = token !== undefined ? `Bearer ${token}` : undefined;
const testFetch = (input, init = {}) => {
    const headers = new UndiciHeaders(init.headers ?? {});
    if (authValue && !headers.has('authorization')) headers.set('authorization', authValue);
    const entry = { method: init.method ?? 'GET', ms: now() };
    httpLog.push(entry);
    const p = undiciFetch(input, { ...init, headers, dispatcher }).then(
        (res) => { entry.status = res.status; return res; },
        (err) => { entry.error = describe(err).message; throw err; });
    inflight.add(p);
    p.then(() => inflight.delete(p), () => inflight.delete(p));
    return p;
};
const transportOpts = { fetch: testFetch };
if (authValue) transportOpts.requestInit = { headers: { Authorization: authValue } };
if (opt.session) transportOpts.sessionId = opt.session;
const transport = new StreamableHTTPClientTransport(url, transportOpts);
// Without initialize the SDK never learns the protocol version: set it, so every request still
// carries MCP-Protocol-Version as the spec requires after initialization.
if (opt.session) transport.setProtocolVersion(opt.protocolVersion);
const transportErrors = [];
transport.onerror = (err) => { transportErrors.push({ ms: now(), ...describe(err) }); };

// Turn an SDK, transport or network error into {status?, code?, message}.
function describe(err) {
    const d = { message: err?.message ?? String(err) };
    if (err instanceof StreamableHTTPError) {
        if (err.code > 0) d.status = err.code;
        // "Error POSTing to endpoint: BODY": keep a JSON-RPC error code from the body.
        const m = /endpoint: (.*)$/s.exec(err.message);
        if (m) {
            try {
                const body = JSON.parse(m[1]);
                if (body?.error && typeof body.error.code === 'number') {
                    d.code = body.error.code;
                    if (typeof body.error.message === 'string') d.rpc_message = body.error.message;
                }
            } catch { /* not JSON */ }
        }
    } else if (err instanceof McpError) {
        d.code = err.code;
    } else if (err?.cause) {
        d.cause = err.cause.code ?? err.cause.message ?? String(err.cause);
    }
    return d;
}

// ---- client ---------------------------------------------------------------------------------
const client = new Client({ name: opt.name, version: '0.0.1' }, { capabilities: opt.caps });
const serverMessages = [];
client.fallbackNotificationHandler = async (n) => { serverMessages.push({ method: n.method, ms: now() }); };
if (opt.caps.roots) {
    client.setRequestHandler(ListRootsRequestSchema, async () => {
        serverMessages.push({ method: 'roots/list', ms: now() });
        return { roots: [] };
    });
}
if (opt.caps.elicitation) {
    client.setRequestHandler(ElicitRequestSchema, async () => {
        serverMessages.push({ method: 'elicitation/create', ms: now() });
        return { action: 'decline' };
    });
}
if (opt.caps.sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, async () => {
        serverMessages.push({ method: 'sampling/createMessage', ms: now() });
        throw new McpError(-32603, 'the lanyard test client does not sample');
    });
}

const reqOpts = { timeout: opt.timeout };
const withTimeout = (p, what) => Promise.race([p, new Promise((_, reject) => {
    setTimeout(() => reject(new Error(`${what} timed out after ${opt.timeout} ms`)), opt.timeout).unref();
})]);

async function finish(code) {
    // Let requests still in flight (the GET stream's opening, above all) report their outcome.
    await withTimeout(Promise.allSettled([...inflight]), 'waiting for requests').catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    out({ op: 'transport-errors', errors: transportErrors, http: httpLog, server_messages: serverMessages });
    await client.close().catch(() => {});
    dispatcher.destroy().catch(() => {});
    process.stdout.write('', () => process.exit(code));
}

let connected = false;
try {
    await client.connect(transport, reqOpts);
    connected = true;
    const result = { session: transport.sessionId ?? null, protocol: transport.protocolVersion ?? null };
    if (opt.session) result.resumed = true;
    else { result.server = client.getServerVersion(); result.capabilities = client.getServerCapabilities(); }
    out({ op: 'connect', ok: true, result });
} catch (err) {
    out({ op: 'connect', ok: false, ...describe(err) });
}
if (!connected) await finish(1);

async function runOp({ name, args }) {
    switch (name) {
    case 'list-tools': return client.listTools(undefined, reqOpts);
    case 'list-prompts': return client.listPrompts(undefined, reqOpts);
    case 'list-resources': return client.listResources(undefined, reqOpts);
    case 'ping': return client.ping(reqOpts);
    case 'call': return client.callTool({ name: args[0], arguments: args[1] }, undefined, reqOpts);
    case 'read': return client.readResource({ uri: args[0] }, reqOpts);
    case 'get-prompt': return client.getPrompt({ name: args[0], arguments: args[1] }, reqOpts);
    case 'progress': {
        const start = performance.now();
        const progress = [];
        const res = await client.callTool(
            { name: 'trigger-long-running-operation', arguments: { duration: Number(args[0]), steps: Number(args[1]) } },
            undefined,
            {
                ...reqOpts,
                resetTimeoutOnProgress: true,
                onprogress: (p) => progress.push({ ms: Math.round(performance.now() - start), ...p }),
            });
        return { progress, result_ms: Math.round(performance.now() - start), tool_result: res };
    }
    case 'open-stream':
        // The SDK's resumeStream without an event id is a plain GET of the standalone stream;
        // it resolves once the response headers are in (a refusal throws with the status).
        await withTimeout(transport.resumeStream(undefined), 'open-stream');
        return { opened: true };
    case 'sleep':
        await new Promise((r) => setTimeout(r, Number(args[0])));
        return {};
    case 'print-session':
        return { session: transport.sessionId ?? null, protocol: transport.protocolVersion ?? null };
    case 'terminate': {
        const session = transport.sessionId ?? null;
        await withTimeout(transport.terminateSession(), 'terminate');
        return { terminated: session };
    }
    default: throw new Error(`unknown operation ${name}`);
    }
}

if (connected) {
    for (const op of ops) {
        try {
            out({ op: op.name, ok: true, result: await runOp(op) });
        } catch (err) {
            out({ op: op.name, ok: false, ...describe(err) });
        }
    }
    await finish(0);
}
