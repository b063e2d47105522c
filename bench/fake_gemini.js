#!/usr/bin/env node
// A fast fake Gemini upstream for the benchmark: fixed bodies, configurable latency and stream pacing.
//
//   node bench/fake_gemini.js --port 8790 [--latency 0] [--jitter 0] [--chunks 20] [--interval 100]
//        [--tls-cert server.pem --tls-key server.key]    (HTTPS, as Gemini is; the control routes too)
//
//   POST /{v1beta|v1}/models/{m}:generateContent         the recorded body of
//        tests/fixtures/gemini/generate_text.json, after `latency` ms (± `jitter` %, uniform:
//        a real upstream's latency varies, which keeps clients from moving in lockstep)
//   POST /{v1beta|v1}/models/{m}:streamGenerateContent    `chunks` SSE events in Google's framing
//        (`data: <json>\r\n\r\n`), the first after `latency` ms, then one every `interval` ms
//   GET  /{v1beta|v1}/models[/{m}]                        the recorded model list / model
//   GET  /_config, POST /_config {"latency","jitter","chunks","interval"}   read / change the pacing
//   GET  /_stats                                          calls served, streams open, CPU used, TCP
//        connections accepted and TLS handshakes completed (full and resumed): how well clients reuse
//        their connections
//
// Each stream chunk's text carries a marker `#<index>:<sent>#`, where <sent> is this process's
// CLOCK_MONOTONIC in microseconds at the moment of the write. CLOCK_MONOTONIC is shared by every
// process on the host, so the stream client measures each chunk's delivery lag exactly, through the
// gateway or straight from here, whatever dialect the text was translated into.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');

const FIXTURES = path.join(__dirname, '..', 'tests', 'fixtures', 'gemini');

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const config = {
  latency: Number(arg('latency', 0)),
  jitter: Number(arg('jitter', 0)),
  chunks: Number(arg('chunks', 20)),
  interval: Number(arg('interval', 100)),
};
const port = Number(arg('port', 8790));
const host = arg('host', '127.0.0.1');

// The recorded answers, read once: the fake never builds a JSON body per request.
const GENERATE_BODY = fs.readFileSync(path.join(FIXTURES, 'generate_text.json'));
const MODELS_BODY = fs.readFileSync(path.join(FIXTURES, 'models_list_page.json'));
const MODEL_BODY = fs.readFileSync(path.join(FIXTURES, 'models_get.json'));
// The headers Google sends (WIRE.md, 1.1), so the gateway parses as much as it would in production.
const GOOGLE_HEADERS = [
  ['Vary', 'Origin'], ['Vary', 'X-Origin'], ['Vary', 'Referer'], ['Server', 'scaffolding on HTTPServer2'],
  ['Server-Timing', 'gfet4t7; dur=1'], ['X-Content-Type-Options', 'nosniff'], ['X-Frame-Options', 'SAMEORIGIN'],
  ['X-Xss-Protection', '0'], ['Alt-Svc', 'h3=":443"; ma=2592000,h3-29=":443"; ma=2592000'],
];
const JSON_HEADERS = [['Content-Type', 'application/json; charset=UTF-8'], ...GOOGLE_HEADERS].flat();
const SSE_HEADERS = [['Content-Type', 'text/event-stream'], ['Content-Disposition', 'attachment'],
  ...GOOGLE_HEADERS].flat();
const CONTROL_HEADERS = { 'Content-Type': 'application/json' };

// One chunk of a recorded stream (stream_text.sse), split around the text and the token count,
// so a chunk is three string concatenations.
const STREAM_HEAD = 'data: {"candidates": [{"content": {"parts": [{"text": "';
const STREAM_MID = '"}],"role": "model"},';
const STREAM_USAGE = '"index": 0}],"usageMetadata": {"promptTokenCount": 29,"candidatesTokenCount": ';
const STREAM_TAIL = ',"promptTokensDetails": [{"modality": "TEXT","tokenCount": 29}]},' +
  '"modelVersion": "gemini-2.5-flash","responseId": "wyawaZq1OqfNkdUPu_SioAU"}\r\n\r\n';

function chunk(index, last) {
  const sent = process.hrtime.bigint() / 1000n;
  const tokens = (index + 1) * 3;
  return STREAM_HEAD + 'tok #' + index + ':' + sent + '# ' + STREAM_MID +
    (last ? '"finishReason": "STOP",' : '') + STREAM_USAGE + tokens +
    ',"totalTokenCount": ' + (tokens + 29) + STREAM_TAIL;
}

const stats = {
  generate: 0, streams: 0, open: 0, chunks: 0, other: 0, connections: 0, tls_handshakes: 0, tls_resumed: 0,
};

function stream(req, res) {
  const { latency, chunks, interval } = config;
  stats.streams++;
  stats.open++;
  res.writeHead(200, SSE_HEADERS);
  const start = Date.now();
  let index = 0;
  let timer = null;
  let closed = false;
  const send = () => {
    if (closed) return;
    const last = index === chunks - 1;
    res.write(chunk(index, last));
    stats.chunks++;
    index++;
    if (last) {
      closed = true;
      stats.open--;
      res.end();
      return;
    }
    // Paced from the stream's start, so timer jitter never accumulates.
    const due = start + latency + index * interval - Date.now();
    timer = setTimeout(send, due > 0 ? due : 0);
  };
  res.on('close', () => {
    if (!closed) {
      closed = true;
      stats.open--;
      clearTimeout(timer);
    }
  });
  if (chunks <= 0) {
    closed = true;
    stats.open--;
    res.end();
  } else if (latency > 0) {
    timer = setTimeout(send, latency);
  } else {
    send();
  }
}

function after(ms, fn) {
  if (ms > 0) setTimeout(fn, ms);
  else fn();
}

function control(req, res, body) {
  if (req.method === 'POST' && req.url === '/_config') {
    try {
      const update = JSON.parse(body || '{}');
      for (const k of Object.keys(config)) {
        if (update[k] !== undefined) config[k] = Number(update[k]);
      }
    } catch (e) {
      res.writeHead(400, CONTROL_HEADERS);
      res.end(JSON.stringify({ error: String(e) }));
      return;
    }
  }
  if (req.url === '/_config' || req.url === '/_stats') {
    const usage = process.cpuUsage();
    const out = req.url === '/_config' ? config : { ...stats, cpu_ms: (usage.user + usage.system) / 1000 };
    res.writeHead(200, CONTROL_HEADERS);
    res.end(JSON.stringify(out));
    return;
  }
  res.writeHead(404, CONTROL_HEADERS);
  res.end('{"error": "unknown control route"}');
}

function handle(req, res, body) {
  const url = req.url;
  if (url.startsWith('/_')) return control(req, res, body);
  if (req.method === 'POST') {
    if (url.includes(':generateContent')) {
      stats.generate++;
      const spread = config.latency * config.jitter / 100;
      return after(config.latency + spread * (2 * Math.random() - 1), () => {
        res.writeHead(200, JSON_HEADERS);
        res.end(GENERATE_BODY);
      });
    }
    if (url.includes(':streamGenerateContent')) return stream(req, res);
  } else if (req.method === 'GET' && /^\/v1(beta)?\/models\/?(\?|$)/.test(url)) {
    stats.other++;
    res.writeHead(200, JSON_HEADERS);
    return res.end(MODELS_BODY);
  } else if (req.method === 'GET' && url.startsWith('/v1')) {
    stats.other++;
    res.writeHead(200, JSON_HEADERS);
    return res.end(MODEL_BODY);
  }
  stats.other++;
  res.writeHead(404, JSON_HEADERS);
  res.end('{"error": {"code": 404, "message": "not served by the benchmark fake", "status": "NOT_FOUND"}}');
}

function onRequest(req, res) {
  // Only the control route reads its body; the rest drain it unread (that is cheapest).
  if (req.url.startsWith('/_') && req.method === 'POST') {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => handle(req, res, body));
    return;
  }
  req.resume();
  req.on('end', () => handle(req, res, ''));
}

const tlsCert = arg('tls-cert', null);
const tlsKey = arg('tls-key', null);
const server = tlsCert
  ? https.createServer({ cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey) }, onRequest)
  : http.createServer(onRequest);
server.on('connection', () => { stats.connections++; });
server.on('secureConnection', (socket) => {
  stats.tls_handshakes++;
  if (socket.isSessionReused()) stats.tls_resumed++;
});
// Longer than any pause in a benchmark, so pooled connections from the gateway never go stale.
server.keepAliveTimeout = 300000;
server.headersTimeout = 301000;
server.requestTimeout = 0;
server.maxHeadersCount = 100;
server.listen({ port, host, backlog: 4096 }, () => {
  process.stdout.write(`fake gemini on ${tlsCert ? 'https' : 'http'}://${host}:${port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
