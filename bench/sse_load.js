#!/usr/bin/env node
// Opens many concurrent streams and measures time to first token and each chunk's delivery lag.
//
//   node bench/sse_load.js --url URL --body-file F [--header 'k: v']... --concurrency 500
//        (--duration 20 | --total 2000) --chunks 20 [--ramp 1] [--done-marker '[DONE]'] [--timeout 60]
//        [--marker-lines output_text.delta]
//        [--ca ca.pem]   (an https URL: the CA that signed the server's certificate)
//
// --duration: keep `concurrency` streams open for that many seconds (a finished stream is replaced
// at once), then wait for the open ones to end. --total: open exactly that many streams, at most
// `concurrency` at a time. --ramp: spread the first streams over that many seconds, as real
// clients do (a thousand requests in the same millisecond measure the burst, not the gateway). Chunks carry the fake upstream's marker `#<index>:<sent µs>#`
// (bench/fake_gemini.js): lag = arrival - sent on the shared CLOCK_MONOTONIC, so it is the time a
// chunk spent between the upstream's write and this client's read. A stream is good when it answers
// 200, delivers all `chunks` markers in order, and (with --done-marker) ends with that marker.
// Prints one JSON object on stdout.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');

function args() {
  const out = { header: [] };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (name === 'header') out.header.push(argv[i + 1]);
    else out[name] = argv[i + 1];
  }
  return out;
}

const opts = args();
const url = new URL(opts.url);
const body = fs.readFileSync(opts['body-file']);
const concurrency = Number(opts.concurrency || 10);
const duration = opts.duration !== undefined ? Number(opts.duration) : null;
const total = opts.total !== undefined ? Number(opts.total) : null;
const expected = Number(opts.chunks || 20);
const doneMarker = opts['done-marker'] || null;
// Only lines holding this text are scanned for markers (a Responses stream repeats its whole text
// in its closing events; its deltas alone carry each chunk once).
const markerLines = opts['marker-lines'] || null;
const timeoutMs = Number(opts.timeout || 120) * 1000;
const rampMs = Number(opts.ramp || 0) * 1000; // slot i opens its first stream at i/concurrency of it

const headers = { 'Content-Type': 'application/json', 'Content-Length': body.length };
for (const h of opts.header) {
  const i = h.indexOf(':');
  headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}
// Keep-alive like a real SDK; no cap on sockets, or streams would queue in the agent.
const secure = url.protocol === 'https:';
const transport = secure ? https : http;
const agentOptions = { keepAlive: true, maxSockets: Infinity, maxFreeSockets: 4096 };
if (secure && opts.ca) agentOptions.ca = fs.readFileSync(opts.ca);
const agent = new transport.Agent(agentOptions);

const MARKER = /#(\d+):(\d+)#/g;
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

const ttfb = []; // request sent -> first chunk marker, ms
const headersMs = []; // request sent -> response status and headers, ms
const lags = []; // per chunk: read time - upstream write time, ms
const errors = {};
let started = 0;
let completed = 0;
let failed = 0;
let open = 0;
let peakOpen = 0;
let stopOpening = false;
let firstStart = null;
let lastEnd = null;

function fail(kind) {
  failed++;
  errors[kind] = (errors[kind] || 0) + 1;
}

function one() {
  return new Promise((resolve) => {
    const t0 = nowUs();
    if (firstStart === null) firstStart = t0;
    let settled = false;
    let seen = 0;
    let carry = '';
    let tail = '';
    let bad = null;
    const finish = (kind) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      lastEnd = nowUs();
      if (kind) fail(kind);
      else completed++;
      resolve(kind);
    };
    const req = transport.request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'POST', headers, agent },
      (res) => {
        headersMs.push((nowUs() - t0) / 1000);
        if (res.statusCode !== 200) {
          res.resume();
          res.on('end', () => finish('status_' + res.statusCode));
          return;
        }
        res.setEncoding('utf8');
        res.on('data', (text) => {
          const at = nowUs();
          // Markers never span a line: scan up to the last newline, keep the rest for later.
          const buf = carry + text;
          const cut = buf.lastIndexOf('\n') + 1;
          carry = buf.slice(cut);
          const whole = buf.slice(0, cut);
          const scan = markerLines ? whole.split('\n').filter((l) => l.includes(markerLines)).join('\n') : whole;
          MARKER.lastIndex = 0;
          let m;
          while ((m = MARKER.exec(scan)) !== null) {
            const index = Number(m[1]);
            if (index !== seen) bad = bad || 'out_of_order';
            if (seen === 0) ttfb.push((at - t0) / 1000);
            lags.push((at - Number(m[2])) / 1000);
            seen++;
          }
          if (doneMarker) tail = (tail + whole).slice(-2048);
        });
        res.on('end', () => {
          if (bad) return finish(bad);
          if (seen !== expected) return finish(seen < expected ? 'missing_chunks' : 'extra_chunks');
          if (doneMarker && !(tail + carry).includes(doneMarker)) return finish('no_end_marker');
          finish(null);
        });
        res.on('error', () => finish('read_error'));
        res.on('aborted', () => finish('aborted'));
      }
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish('timeout');
    }, timeoutMs);
    req.on('error', (e) => finish('conn_' + (e.code || 'error')));
    req.end(body);
  });
}

async function slot(delay) {
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  while (!stopOpening) {
    if (total !== null) {
      if (started >= total) return;
    }
    started++;
    open++;
    if (open > peakOpen) peakOpen = open;
    const failure = await one();
    open--;
    // A refused or reset connection fails at once: pause, or the slot would spin.
    if (failure && failure.startsWith('conn_')) await new Promise((r) => setTimeout(r, 50));
  }
}

function pct(values, p) {
  if (!values.length) return null;
  const sorted = Float64Array.from(values).sort();
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i] * 1000) / 1000;
}

function summary(values) {
  return { p50: pct(values, 50), p90: pct(values, 90), p99: pct(values, 99), max: pct(values, 100), n: values.length };
}

async function main() {
  const cpu0 = process.cpuUsage();
  if (duration !== null) setTimeout(() => { stopOpening = true; }, duration * 1000);
  const slots = [];
  for (let i = 0; i < concurrency; i++) slots.push(slot((i * rampMs) / concurrency));
  await Promise.all(slots);
  const cpu = process.cpuUsage(cpu0);
  const elapsed = ((lastEnd || nowUs()) - (firstStart || nowUs())) / 1e6;
  const out = {
    streams: started,
    completed,
    failed,
    errors,
    elapsed_s: Math.round(elapsed * 1000) / 1000,
    peak_open: peakOpen,
    streams_per_s: elapsed > 0 ? Math.round((completed / elapsed) * 10) / 10 : null,
    chunks: lags.length,
    headers_ms: summary(headersMs),
    ttfb_ms: summary(ttfb),
    lag_ms: summary(lags),
    client_cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  agent.destroy();
}

main();
