// The UI's API client against a real HTTP server on loopback, through Node's fetch (the same
// Fetch API the browser has).
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ApiClient, ApiError, SignedOutError, encodeQuery } from '../../src/webui/lib/api.ts';

let server: Server;
let base: string;
const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const url = req.url ?? '';
      if (url.startsWith('/api/containers/json')) { res.setHeader('Content-Type', 'application/json'); res.end('[{"Id":"abc"}]'); return; }
      if (url.startsWith('/api/containers/missing/json')) { res.statusCode = 404; res.setHeader('Content-Type', 'application/json'); res.end('{"message":"No such container: missing"}'); return; }
      if (url.startsWith('/api/plain-error')) { res.statusCode = 500; res.end('boom\n'); return; }
      if (url.startsWith('/api/empty-error')) { res.statusCode = 502; res.end(); return; }
      if (url.startsWith('/api/signed-out')) { res.statusCode = 401; res.end('{"message":"not signed in to the Berth UI (session missing or expired)"}'); return; }
      if (url.startsWith('/api/containers/abc/start')) { res.statusCode = 204; res.end(); return; }
      if (url.startsWith('/api/events')) {
        res.setHeader('Content-Type', 'application/json');
        let n = 0;
        const t = setInterval(() => {
          res.write(`{"n":${n++}}\n`);
          if (n === 3) { clearInterval(t); res.end(); }
        }, 10);
        return;
      }
      if (url.startsWith('/api/forever')) { res.write('{"n":0}\n'); return; }
      res.statusCode = 404;
      res.end('{"message":"page not found"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

test("query encoding follows docker's: booleans 1/0, filters as JSON, undefined left out", () => {
  assert.equal(encodeQuery({ all: true, size: false, limit: 5, name: 'a b&c', skip: undefined, none: null, filters: { status: ['running'] } }),
    `?all=1&size=0&limit=5&name=a%20b%26c&filters=${encodeURIComponent('{"status":["running"]}')}`);
  assert.equal(encodeQuery({}), '');
  assert.equal(encodeQuery(undefined), '');
});

test('GET: JSON answer; no CSRF header on reads', async () => {
  const api = new ApiClient({ base, csrf: 'tok' });
  assert.deepEqual(await api.get('/containers/json', { all: true }), [{ Id: 'abc' }]);
  const req = seen.at(-1)!;
  assert.equal(req.url, '/api/containers/json?all=1');
  assert.equal(req.headers['x-berth-csrf'], undefined);
});

test('POST: CSRF header, JSON body; empty answers are undefined', async () => {
  const api = new ApiClient({ base, csrf: 'tok' });
  assert.equal(await api.post('/containers/abc/start', { Detach: false }, { t: 3 }), undefined);
  const req = seen.at(-1)!;
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/api/containers/abc/start?t=3');
  assert.equal(req.headers['x-berth-csrf'], 'tok');
  assert.equal(req.headers['content-type'], 'application/json');
  assert.equal(req.body, '{"Detach":false}');
  await api.request('PUT', '/containers/abc/start', { body: Uint8Array.of(0, 255, 1), headers: { 'Content-Type': 'application/x-tar' } });
  assert.equal(seen.at(-1)!.headers['content-type'], 'application/x-tar');
  assert.equal(seen.at(-1)!.body, '\u0000\u00ff\u0001', 'binary bodies are sent as they are');
});

test("errors carry the daemon's message and status", async () => {
  const api = new ApiClient({ base });
  await assert.rejects(api.get('/containers/missing/json'), (e: unknown) => e instanceof ApiError && e.status === 404 && e.message === 'No such container: missing');
  await assert.rejects(api.get('/plain-error'), (e: unknown) => e instanceof ApiError && e.status === 500 && e.message === 'boom');
  await assert.rejects(api.get('/empty-error'), (e: unknown) => e instanceof ApiError && e.status === 502 && /^502/.test(e.message));
  await assert.rejects(api.get('/signed-out'), SignedOutError);
  const down = new ApiClient({ base: 'http://127.0.0.1:1/api' });
  await assert.rejects(down.get('/info'), (e: unknown) => e instanceof ApiError && e.status === 0 && /cannot reach the Berth daemon/.test(e.message));
});

test('streams: chunks arrive as sent; an abort ends the stream quietly', async () => {
  const api = new ApiClient({ base });
  let text = '';
  await api.stream('GET', '/events', {}, (c) => { text += new TextDecoder().decode(c); });
  assert.equal(text, '{"n":0}\n{"n":1}\n{"n":2}\n');
  const ctrl = new AbortController();
  let got = '';
  const done = api.stream('GET', '/forever', { signal: ctrl.signal }, (c) => { got += new TextDecoder().decode(c); ctrl.abort(); });
  await done;
  assert.equal(got, '{"n":0}\n');
});
