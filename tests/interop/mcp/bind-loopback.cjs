'use strict';
// Preload for the MCP peers of lanyard's gateway tests:
//   node --require tests/interop/mcp/bind-loopback.cjs SERVER.js ...
// server-everything and the MCP SDK example servers listen on a bare port, which means every
// interface. This makes any net.Server (http.Server included) that listens on a bare port, or
// on an options object without a host, listen on 127.0.0.1 instead (LANYARD_BIND_HOST to pick
// another address). Explicit hosts, Unix socket paths and inherited handles are left alone.
//
// LANYARD_PORT_MAP="FROM:TO[,FROM:TO...]" also moves a listen on port FROM to port TO. The SDK
// example servers hard-code port 3000 (no environment variable changes it), so this is how a
// test runs them on a free port. They still log "listening on port 3000".
const net = require('node:net');

const host = process.env.LANYARD_BIND_HOST || '127.0.0.1';
const portMap = new Map();
for (const pair of (process.env.LANYARD_PORT_MAP || '').split(',')) {
    const m = /^\s*(\d+):(\d+)\s*$/.exec(pair);
    if (m) portMap.set(Number(m[1]), Number(m[2]));
}

const isPort = (v) => typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v));
const mapPort = (p) => (portMap.has(Number(p)) ? portMap.get(Number(p)) : p);

const originalListen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
    const first = args[0];
    if (args.length === 0 || typeof first === 'function') {
        // listen() / listen(cb): a random port on every interface.
        args.unshift(0, host);
    } else if (isPort(first)) {
        // listen(port[, host][, backlog][, cb]): a number after the port is a backlog.
        args[0] = mapPort(first);
        if (args.length > 1 && args[1] == null) args[1] = host;
        else if (typeof args[1] !== 'string') args.splice(1, 0, host);
    } else if (first && typeof first === 'object' && !('_handle' in first) && first.fd === undefined
               && first.path === undefined && first.handle === undefined) {
        // listen(options[, cb])
        const opts = { ...first };
        if (opts.port !== undefined) opts.port = mapPort(opts.port);
        if (!opts.host) opts.host = host;
        args[0] = opts;
    }
    return originalListen.apply(this, args);
};
