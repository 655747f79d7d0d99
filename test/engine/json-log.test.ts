// Reading json-file logs (src/engine/json-log.ts): rotated files in order, --tail read backwards,
// --since/--until, stream selection, --follow across rotation and truncation, and a real
// container's log written by the monitor while it is followed.
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { logFiles, parseLogTime, readLogs, type LogEntry, type ReadLogOptions } from '../../src/engine/json-log.ts';
import { MonitorConnection, monitorLauncher } from '../../src/engine/monitor.ts';
import { Runtime } from '../../src/runtime/container.ts';
import { pidAlive, sleep, waitFor, withBundle } from '../helpers/bundle.ts';

const tmp = mkdtempSync('/tmp/berth-jsonlog-');
after(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const fresh = (): string => join(tmp, `l${seq++}`, 'c.log');

/** Entry i at 2026-01-01T00:00:<i>.5Z (stderr for multiples of 3). */
function entry(i: number, text = `msg-${i}`): string {
  const stream = i % 3 === 0 ? 'stderr' : 'stdout';
  const time = `2026-01-01T00:${String(Math.floor(i / 60)).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.5Z`;
  return `${JSON.stringify({ log: `${text}\n`, stream, time })}\n`;
}
const T0 = Date.parse('2026-01-01T00:00:00Z') / 1000;

function writeLog(path: string, files: number[][]): void {
  mkdirSync(join(path, '..'), { recursive: true });
  // files: oldest first; the last one is `path`
  files.forEach((ids, k) => {
    const name = k === files.length - 1 ? path : `${path}.${files.length - 1 - k}`;
    writeFileSync(name, ids.map((i) => entry(i)).join(''));
  });
}

async function collect(path: string, opts: ReadLogOptions = {}): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of readLogs(path, opts)) out.push(e);
  return out;
}
const ids = (es: LogEntry[]): number[] => es.map((e) => Number(/^msg-(\d+)\n$/.exec(e.log.toString())![1]));
const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, k) => a + k);

test('the rotated files are read oldest first', async () => {
  const p = fresh();
  writeLog(p, [range(0, 4), range(4, 7), range(7, 10)]);
  assert.deepEqual(logFiles(p).map((f) => f.slice(p.length)), ['.2', '.1', '']);
  const all = await collect(p);
  assert.deepEqual(ids(all), range(0, 10));
  assert.equal(all[0].stream, 'stderr');
  assert.equal(all[1].stream, 'stdout');
  assert.equal(all[0].time, '2026-01-01T00:00:00.5Z');
  assert.ok(Buffer.isBuffer(all[0].log));
});

test('tail: the last N entries across files; 0; more than there are', async () => {
  const p = fresh();
  writeLog(p, [range(0, 4), range(4, 7), range(7, 10)]);
  assert.deepEqual(ids(await collect(p, { tail: 1 })), [9]);
  assert.deepEqual(ids(await collect(p, { tail: 3 })), [7, 8, 9]);
  assert.deepEqual(ids(await collect(p, { tail: 4 })), [6, 7, 8, 9]);
  assert.deepEqual(ids(await collect(p, { tail: 8 })), range(2, 10));
  assert.deepEqual(ids(await collect(p, { tail: 10 })), range(0, 10));
  assert.deepEqual(ids(await collect(p, { tail: 100 })), range(0, 10));
  assert.deepEqual(ids(await collect(p, { tail: 0 })), []);
});

test('tail counts entries before the stream filter (as docker does)', async () => {
  const p = fresh();
  writeLog(p, [range(0, 10)]);
  // last 4: 6(err) 7 8 9(err)
  assert.deepEqual(ids(await collect(p, { tail: 4, stderr: false })), [7, 8]);
  assert.deepEqual(ids(await collect(p, { tail: 4, stdout: false })), [6, 9]);
  assert.deepEqual(ids(await collect(p, { stdout: false, stderr: false })), []);
});

test('tail on a big file reads backwards (correct and quick)', async () => {
  const p = fresh();
  mkdirSync(join(p, '..'), { recursive: true });
  const big = Array.from({ length: 200000 }, (_, i) => entry(i % 1000, `msg-${i}`)).join('');
  writeFileSync(p, big);
  const started = performance.now();
  const got = await collect(p, { tail: 5 });
  const ms = performance.now() - started;
  assert.deepEqual(ids(got), range(199995, 200000));
  assert.ok(ms < 200, `tail 5 of a ${(big.length / 1e6).toFixed(1)} MB log took ${ms.toFixed(0)} ms`);
});

test('since and until by the entries\' times (fractional seconds)', async () => {
  const p = fresh();
  writeLog(p, [range(0, 5), range(5, 10)]);
  assert.deepEqual(ids(await collect(p, { since: T0 + 3.5 })), range(3, 10));
  assert.deepEqual(ids(await collect(p, { since: T0 + 3.6 })), range(4, 10));
  assert.deepEqual(ids(await collect(p, { until: T0 + 6.5 })), range(0, 7));
  assert.deepEqual(ids(await collect(p, { since: T0 + 2, until: T0 + 5 })), [2, 3, 4]);
  assert.deepEqual(ids(await collect(p, { tail: 3, since: T0 + 8 })), [8, 9]);
  assert.equal(parseLogTime('2026-01-01T00:00:01.123456789Z'), T0 + 1.123456789);
  assert.equal(parseLogTime('2026-01-01T00:00:01Z'), T0 + 1);
});

test('an unfinished last line is not an entry; damaged lines are skipped', async () => {
  const p = fresh();
  writeLog(p, [[0, 1]]);
  appendFileSync(p, 'not json\n');
  appendFileSync(p, entry(2));
  appendFileSync(p, entry(3).slice(0, 20));
  assert.deepEqual(ids(await collect(p)), [0, 1, 2]);
  assert.deepEqual(ids(await collect(p, { tail: 1 })), [2]);
});

test('a missing log is empty', async () => {
  assert.deepEqual(await collect(join(tmp, 'nope', 'c.log')), []);
  assert.deepEqual(await collect(join(tmp, 'nope', 'c.log'), { tail: 3 }), []);
});

test('follow: new entries, a rotation, a truncation, a line written in two parts; stopFollowing ends after draining', async () => {
  const p = fresh();
  writeLog(p, [[0, 1]]);
  let stop!: () => void;
  const stopFollowing = new Promise<void>((r) => { stop = r; });
  const got: number[] = [];
  const reading = (async () => {
    for await (const e of readLogs(p, { follow: true, tail: 1, stopFollowing })) got.push(ids([e])[0]);
  })();
  await waitFor('the tail', () => got.length === 1);
  appendFileSync(p, entry(2));
  await waitFor('a new entry', () => got.length === 2);
  // rotation as the monitor does it: path → path.1, then a new path
  appendFileSync(p, entry(3));
  renameSync(p, `${p}.1`);
  writeFileSync(p, entry(4));
  await waitFor('entries across the rotation', () => got.length === 4);
  // max-file 1: truncated in place
  truncateSync(p, 0);
  await sleep(250);
  appendFileSync(p, entry(5));
  await waitFor('an entry after the truncation', () => got.length === 5);
  const half = entry(6);
  appendFileSync(p, half.slice(0, 10));
  await sleep(250);
  assert.equal(got.length, 5);
  appendFileSync(p, half.slice(10));
  await waitFor('the completed line', () => got.length === 6);
  appendFileSync(p, entry(7));
  stop();
  await reading;
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7]);
});

test('follow ends on abort; a log that does not exist yet is waited for', async () => {
  const p = fresh();
  mkdirSync(join(p, '..'), { recursive: true });
  const ac = new AbortController();
  const got: number[] = [];
  const reading = (async () => {
    for await (const e of readLogs(p, { follow: true, signal: ac.signal })) got.push(ids([e])[0]);
  })();
  await sleep(150);
  writeFileSync(p, entry(1));
  await waitFor('the first entry', () => got.length === 1);
  ac.abort();
  await reading;
  assert.deepEqual(got, [1]);
});

test('a container\'s log, rotated by the monitor while it is followed', async () => {
  await withBundle({}, async (b) => {
    const runtime = new Runtime({ root: b.root });
    const id = b.newId('bl');
    const dir = join(b.base, 'm');
    const log = join(dir, 'json.log');
    b.writeConfig((s) => {
      s.process.args = ['sh', '-c', 'i=0; while [ $i -lt 150 ]; do echo "line-$i-xxxxxxxxxxxxxxxxxxxx"; echo "err-$i" >&2; i=$((i+1)); sleep 0.01; done'];
    });
    const { launch, ready } = monitorLauncher({ dir, logPath: log, logMaxSize: 3000, logMaxFile: 3 });
    await runtime.create(id, { bundle: b.dir, launch });
    const monitorPid = await ready;
    b.trackPid(monitorPid);
    const conn = await MonitorConnection.connect(dir);
    const got: string[] = [];
    const reading = (async () => {
      for await (const e of readLogs(log, { follow: true, stderr: false, stopFollowing: conn.exited })) got.push(e.log.toString());
    })();
    runtime.start(id);
    assert.equal(await conn.exited, 0);
    await reading;
    assert.deepEqual(got, range(0, 150).map((i) => `line-${i}-xxxxxxxxxxxxxxxxxxxx\n`));
    assert.equal(logFiles(log).length, 3);
    // Afterwards only what the rotation kept, still in order, the tail from the newest file.
    const kept = (await collect(log, { stdout: false })).map((e) => Number(/^err-(\d+)/.exec(e.log.toString())![1]));
    assert.equal(kept[kept.length - 1], 149);
    kept.forEach((n, k) => assert.equal(n, kept[0] + k));
    assert.deepEqual((await collect(log, { tail: 2 })).map((e) => e.log.toString()), ['line-149-xxxxxxxxxxxxxxxxxxxx\n', 'err-149\n']);
    await waitFor('the monitor to exit', () => !pidAlive(monitorPid), 5000);
    runtime.delete(id, true);
  });
});
