// bench/http's application for Node: the cluster module's primary forks
// WORKERS workers (default 2) that share one listening socket on HOST:PORT
// and forks a new one whenever one dies. Same paths and bytes as
// apps/sxpool/main.sx; the store is a Map that each worker fills at start.
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT);
const workers = Number(process.env.WORKERS || 2);

if (cluster.isPrimary) {
  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', () => {
    if (stopping) {
      if (Object.keys(cluster.workers).length === 0) process.exit(0);
    } else {
      cluster.fork();
    }
  });
  const stop = () => {
    stopping = true;
    const live = Object.values(cluster.workers);
    if (live.length === 0) process.exit(0);
    for (const w of live) w.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const store = new Map();
  for (let i = 0; i < 500; i++) store.set('k' + String(i).padStart(3, '0'), 'v' + i * i);
  const rowKeys = [];
  for (let i = 0; i < 50; i++) rowKeys.push('k' + String(i * 10).padStart(3, '0'));

  const fib = (n) => (n < 2 ? n : fib(n - 1) + fib(n - 2));

  const rows = () => {
    let s = '<!doctype html>\n<html><head><title>rows</title></head><body>\n<table>\n';
    for (const k of rowKeys) s += '<tr><td>' + k + '</td><td>' + store.get(k) + '</td></tr>\n';
    return s + '</table>\n</body></html>\n';
  };

  const send = (res, status, type, body) => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };

  http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    switch (url.pathname) {
      case '/': return send(res, 200, 'text/plain', 'hello\n');
      case '/fib': return send(res, 200, 'text/plain', fib(Number(url.searchParams.get('n') || 0)) + '\n');
      case '/rows': return send(res, 200, 'text/html', rows());
      case '/setup': return send(res, 200, 'text/plain', 'ok\n');
      default: return send(res, 404, 'text/plain', 'not found\n');
    }
  }).listen(port, host);
}
