// The UI's stream parsers, fed the way a browser receives bytes: in arbitrary chunks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsonStreamDecoder, LineSplitter, MuxDecoder, PullProgress, StreamParseError, splitTimestamp, type JsonMessage } from '../../src/webui/lib/streams.ts';

const enc = new TextEncoder();

/** Every way of cutting `bytes` into two pieces, plus byte by byte. */
function* cuttings(bytes: Uint8Array): Generator<Uint8Array[]> {
  for (let i = 0; i <= bytes.length; i++) yield [bytes.subarray(0, i), bytes.subarray(i)];
  yield [...bytes].map((b) => Uint8Array.of(b));
}

test('JSON stream: newline-separated, back-to-back and CRLF-separated messages, cut anywhere (even inside UTF-8)', () => {
  const text = '{"status":"Pulling from library/busybox","id":"latest"}\r\n{"a":"x}{\\"y"}{"b":[1,{"c":"é€😀"}]}\n\n  {"d":null}';
  const bytes = enc.encode(text);
  for (const pieces of cuttings(bytes)) {
    const dec = new JsonStreamDecoder();
    const got = pieces.flatMap((p) => dec.push(p));
    got.push(...dec.end());
    assert.deepEqual(got, [{ status: 'Pulling from library/busybox', id: 'latest' }, { a: 'x}{"y' }, { b: [1, { c: 'é€😀' }] }, { d: null }]);
  }
});

test('JSON stream: garbage and a stream cut inside a message are errors', () => {
  assert.throws(() => new JsonStreamDecoder().push('{"a":1}\nnot json'), StreamParseError);
  const dec = new JsonStreamDecoder();
  assert.deepEqual(dec.push('{"a":1}{"b":'), [{ a: 1 }]);
  assert.throws(() => dec.end(), /ended inside a JSON message/);
  assert.throws(() => new JsonStreamDecoder().push('{"a":}'), /malformed JSON message/);
});

test('JSON stream: memory stays bounded on a long stream (only the unfinished message is kept)', () => {
  const dec = new JsonStreamDecoder<{ n: number }>();
  let count = 0;
  for (let i = 0; i < 20_000; i++) count += dec.push(`{"n":${i}}\n{"n":`).length + dec.push(`${i}}\n`).length;
  assert.equal(count, 40_000);
  assert.ok((dec as unknown as { buf: string }).buf.length < 16);
});

function frame(stream: number, text: string): Uint8Array {
  const payload = enc.encode(text);
  const out = new Uint8Array(8 + payload.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, payload.length);
  out.set(payload, 8);
  return out;
}

test("multiplexed logs: docker's stdcopy frames, split across chunks anywhere", () => {
  const parts = [frame(1, 'out line\n'), frame(2, 'err line\n'), frame(1, ''), frame(1, 'x'.repeat(70_000))];
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { all.set(p, off); off += p.length; }
  for (const cut of [1, 7, 8, 9, 17, 30, 1000, 65_536]) {
    const dec = new MuxDecoder();
    const frames = [];
    for (let i = 0; i < all.length; i += cut) frames.push(...dec.push(all.subarray(i, i + cut)));
    assert.deepEqual(frames.map((f) => [f.stream, new TextDecoder().decode(f.data)]), [[1, 'out line\n'], [2, 'err line\n'], [1, ''], [1, 'x'.repeat(70_000)]]);
    assert.equal(dec.buffered, 0);
  }
  const partial = new MuxDecoder();
  partial.push(frame(1, 'abcdef').subarray(0, 11));
  assert.equal(partial.buffered, 11, 'an unfinished frame is kept, not emitted');
});

test('multiplexed logs: a TTY stream (raw text) is recognised as not multiplexed', () => {
  assert.throws(() => new MuxDecoder().push(enc.encode('hello world\r\n')), /not a multiplexed stream.*TTY/);
});

test('lines and timestamps', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push('a\nb'), ['a']);
  assert.deepEqual(s.push(enc.encode('c\n\nd')), ['bc', '']);
  assert.deepEqual(s.end(), ['d']);
  assert.deepEqual(splitTimestamp('2026-11-28T10:29:43.680123456Z hello world'), { time: '2026-11-28T10:29:43.680123456Z', text: 'hello world' });
  assert.deepEqual(splitTimestamp('no time here'), { text: 'no time here' });
});

test('pull progress: per-layer state from the messages docker and Berth send', () => {
  const p = new PullProgress();
  const msgs: JsonMessage[] = [
    { status: 'Pulling from app', id: '1.0' },
    { status: 'Pulling fs layer', id: 'aaa' },
    { status: 'Pulling fs layer', id: 'bbb' },
    { status: 'Waiting', id: 'bbb' },
    { status: 'Downloading', progressDetail: { current: 500, total: 1000 }, progress: '[=====>     ]', id: 'aaa' },
    { status: 'Downloading', progressDetail: { current: 100, total: 3000 }, id: 'bbb' },
  ];
  for (const m of msgs) p.apply(m);
  assert.deepEqual([...p.layers.keys()], ['aaa', 'bbb']);
  assert.equal(p.layers.get('aaa')?.current, 500);
  assert.equal(p.fraction, 600 / 4000);
  for (const m of [
    { status: 'Verifying Checksum', id: 'aaa' }, { status: 'Download complete', id: 'aaa' },
    { status: 'Extracting', progressDetail: { current: 1000, total: 1000 }, id: 'aaa' }, { status: 'Pull complete', id: 'aaa' },
    { status: 'Already exists', id: 'bbb' },
    { status: 'Digest: sha256:' + 'c'.repeat(64) }, { status: 'Status: Downloaded newer image for 127.0.0.1:5000/app:1.0' },
  ] as JsonMessage[]) p.apply(m);
  assert.equal(p.layers.get('aaa')?.done, true);
  assert.equal(p.layers.get('bbb')?.status, 'Already exists');
  assert.equal(p.fraction, 1);
  assert.equal(p.digest, 'sha256:' + 'c'.repeat(64));
  assert.deepEqual(p.lines, ['1.0: Pulling from app', 'Digest: sha256:' + 'c'.repeat(64), 'Status: Downloaded newer image for 127.0.0.1:5000/app:1.0']);
  assert.equal(p.error, undefined);
  p.apply({ errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' });
  assert.equal(p.error, 'manifest unknown');
});

test('push progress: Pushed / Layer already exists / Mounted from end a layer; aux carries the digest', () => {
  const p = new PullProgress();
  for (const m of [
    { status: 'The push refers to repository [127.0.0.1:5000/app]' },
    { status: 'Preparing', id: 'l1' }, { status: 'Preparing', id: 'l2' },
    { status: 'Pushing', progressDetail: { current: 10, total: 20 }, id: 'l1' },
    { status: 'Layer already exists', id: 'l2' }, { status: 'Pushed', id: 'l1' },
    { status: '1.0: digest: sha256:' + 'd'.repeat(64) + ' size: 528' },
    { progressDetail: {}, aux: { Tag: '1.0', Digest: 'sha256:' + 'd'.repeat(64), Size: 528 } },
  ] as JsonMessage[]) p.apply(m);
  assert.equal(p.fraction, 1);
  assert.equal(p.layers.get('l1')?.current, 20);
  assert.equal(p.digest, 'sha256:' + 'd'.repeat(64));
});
