// The pieces of the hijacked-stream client that need no daemon: docker's 8-byte multiplexed
// frames split across arbitrary chunks, the detach-key watcher (partial and broken sequences),
// --detach-keys parsing, and the Upgrade handshake against a small server on a unix socket that
// answers 101 and then echoes what it reads in stdout frames, closing after the client's half-close.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { EngineClient } from '../../src/cli/client.ts';
import { ApiResponseError } from '../../src/cli/client.ts';
import { Demuxer, detachKeyBytes, EscapeProxy, hijack } from '../../src/cli/stream.ts';

const frame = (kind: number, text: string): Buffer => {
  const payload = Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = kind;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
};

test('Demuxer: frames split anywhere reach stdout and stderr whole and in order', () => {
  const all = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err\n'), frame(1, ''), frame(1, 'out two\n')]);
  for (let cut = 1; cut < all.length; cut++) {
    const got: string[] = [];
    const d = new Demuxer({ stdout: (b) => got.push(`1:${b}`), stderr: (b) => got.push(`2:${b}`) });
    d.push(all.subarray(0, cut));
    d.push(all.subarray(cut));
    assert.deepEqual(got.filter((g) => g.length > 2), ['1:out one\n', '2:err\n', '1:out two\n'], `cut at ${cut}`);
    assert.equal(d.pending, 0);
  }
  const d = new Demuxer({});
  assert.throws(() => d.push(frame(3, 'boom')), /error from daemon in stream: boom/);
  assert.throws(() => new Demuxer({}).push(frame(9, 'x')), /Unrecognized input header: 9/);
});

test('EscapeProxy: the sequence detaches, a broken prefix is sent as typed', () => {
  const keys = detachKeyBytes('ctrl-p,ctrl-q');
  assert.deepEqual([...keys], [16, 17]);
  let p = new EscapeProxy(keys);
  assert.equal(p.filter(Buffer.from('ab\x10')).toString(), 'ab');
  assert.equal(p.detached, false);
  assert.equal(p.filter(Buffer.from('\x11zz')).toString(), '');
  assert.equal(p.detached, true);
  p = new EscapeProxy(keys);
  assert.equal(p.filter(Buffer.from('\x10x')).toString(), '\x10x');
  assert.equal(p.filter(Buffer.from('\x10\x10')).toString(), '\x10');
  assert.equal(p.filter(Buffer.from('\x11')).toString(), '');
  assert.equal(p.detached, true);
  assert.deepEqual([...detachKeyBytes('a,ctrl-@,ctrl-[,DEL')], [97, 0, 27, 127]);
  assert.throws(() => detachKeyBytes('ctrl-1'), /Unknown character: 'ctrl-1'/);
  assert.equal(new EscapeProxy(Buffer.alloc(0)).filter(Buffer.from('\x10\x11')).toString(), '\x10\x11');
});

test('hijack: Upgrade: tcp → 101, raw bytes both ways, half-close ends the input; errors carry the daemon message', async () => {
  const dir = mkdtempSync('/tmp/berth-hijack-');
  const sock = join(dir, 's.sock');
  const seen: Array<{ url?: string; upgrade?: string; connection?: string; body: string }> = [];
  const server = createServer((req, res) => {
    if (req.url === '/_ping') { res.setHeader('Api-Version', '1.47'); res.end('OK'); return; }
    res.statusCode = 404;
    res.setHeader('Content-Type', 'application/json');
    res.end('{"message":"No such container: nope"}');
  });
  server.on('upgrade', (req, socket) => {
    if (req.url?.includes('/nope/')) {
      const body = '{"message":"No such container: nope"}';
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      return;
    }
    seen.push({ url: req.url, upgrade: req.headers.upgrade, connection: req.headers.connection, body: '' });
    socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    socket.write(frame(1, 'hello\n'));
    let got = '';
    socket.on('data', (c: Buffer) => { got += c.toString(); });
    socket.on('end', () => {
      socket.end(frame(2, `got:${got}`));
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const client = new EngineClient(sock, `unix://${sock}`);
    const h = await hijack(client, '/containers/abc/attach', { query: { stream: 1, stdin: 1, stdout: 1 } });
    assert.equal(h.multiplexed, true);
    assert.equal(seen[0].url, '/v1.47/containers/abc/attach?stream=1&stdin=1&stdout=1');
    assert.equal(seen[0].upgrade, 'tcp');
    assert.match(seen[0].connection ?? '', /upgrade/i);
    const out: string[] = [];
    const d = new Demuxer({ stdout: (b) => out.push(`1:${b}`), stderr: (b) => out.push(`2:${b}`) });
    if (h.head.length) d.push(h.head);
    h.socket.on('data', (c: Buffer) => d.push(c));
    h.socket.write('typed input');
    h.socket.end();
    await new Promise((r) => h.socket.on('close', r));
    assert.deepEqual(out, ['1:hello\n', '2:got:typed input']);
    await assert.rejects(hijack(client, '/containers/nope/attach'), (e: unknown) => e instanceof ApiResponseError && e.statusCode === 404 && e.message === 'No such container: nope');
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});
