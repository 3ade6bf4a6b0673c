// A stand-in bundle endpoint for lanyard's federation tests: Node's own HTTPS server (not
// lanyard's code) that answers every GET with the current contents of one file, re-read on each
// request, so a test can make it serve a good bundle, garbage, another domain's bundle or an
// older one just by rewriting that file, and present any certificate (a web certificate or an
// X509-SVID) by restarting it.
//
//   node fed_endpoint.mjs --cert PEM --key PEM --body FILE [--port N]
//
// Prints "fed_endpoint listening on 127.0.0.1:PORT" once listening; logs one line per request.
import { readFileSync } from 'node:fs';
import https from 'node:https';

const opt = { port: 0 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
    case '--cert': opt.cert = v; i++; break;
    case '--key': opt.key = v; i++; break;
    case '--body': opt.body = v; i++; break;
    case '--port': opt.port = Number(v); i++; break;
    default:
        process.stderr.write(`fed_endpoint: unknown option ${argv[i]}\n`);
        process.exit(2);
    }
}
if (!opt.cert || !opt.key || !opt.body) {
    process.stderr.write('usage: node fed_endpoint.mjs --cert PEM --key PEM --body FILE [--port N]\n');
    process.exit(2);
}

const server = https.createServer({ cert: readFileSync(opt.cert), key: readFileSync(opt.key) }, (req, res) => {
    let body;
    try {
        body = readFileSync(opt.body);
    } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`no body: ${e.message}\n`);
        console.log(`${req.method} ${req.url} 500`);
        return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
    console.log(`${req.method} ${req.url} 200 ${body.length}`);
});
server.listen(opt.port, '127.0.0.1', () => {
    console.log(`fed_endpoint listening on 127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
