// The CLI's output helpers against docker's own behaviour (values taken from docker and
// go-units): sizes, durations, tabwriter tables, Go templates, progress rendering, timestamps.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bytesSize, displaySize, formatG, fromHumanSize, humanDuration, humanSize, ramInBytes, timeAgo } from '../../src/api/units.ts';
import { progressString } from '../../src/api/jsonmessage.ts';
import { tabwrite, DOCKER_TABLE, DOCKER_VERSION_TABLE } from '../../src/cli/format/table.ts';
import { Template, TemplateError } from '../../src/cli/format/template.ts';
import { renderList, renderObject } from '../../src/cli/format/output.ts';
import { ProgressRenderer, StreamError, displayJSONMessages } from '../../src/cli/format/progress.ts';
import { getTimestamp } from '../../src/cli/format/time.ts';
import { Readable } from 'node:stream';

describe('units (go-units)', () => {
  test('Go %g formatting', () => {
    assert.equal(formatG(4.257, 3), '4.26');
    assert.equal(formatG(999.9, 3), '1e+03', 'Go switches to exponent form when rounding reaches 10^prec');
    assert.equal(formatG(1.125, 3), '1.12', 'exact halves round to even');
    assert.equal(formatG(0.0001234, 3), '0.000123');
    assert.equal(formatG(123456, 3), '1.23e+05');
    assert.equal(formatG(5, 3), '5');
    assert.equal(formatG(0, 3), '0');
  });

  test('sizes as docker prints them', () => {
    assert.equal(displaySize(4_257_000), '4.26MB');
    assert.equal(displaySize(0), '0B');
    assert.equal(displaySize(999), '999B');
    assert.equal(displaySize(1000), '1kB');
    assert.equal(displaySize(1_234_567_890), '1.23GB');
    assert.equal(humanSize(4_257_000), '4.257MB');
    assert.equal(bytesSize(25_276_502_016), '23.54GiB');
    assert.equal(bytesSize(1024), '1KiB');
    assert.equal(ramInBytes('512m'), 512 * 1024 * 1024);
    assert.equal(ramInBytes('1.5g'), 1.5 * 1024 ** 3);
    assert.equal(ramInBytes('100'), 100);
    assert.equal(fromHumanSize('44kB'), 44_000);
    assert.throws(() => ramInBytes('lots'), /invalid size/);
  });

  test('durations as docker prints them', () => {
    const s = 1000;
    const cases: Array<[number, string]> = [
      [500, 'Less than a second'], [1 * s, '1 second'], [59 * s, '59 seconds'], [60 * s, 'About a minute'],
      [119 * s, 'About a minute'], [120 * s, '2 minutes'], [59 * 60 * s, '59 minutes'], [60 * 60 * s, 'About an hour'],
      [89 * 60 * s, 'About an hour'], [90 * 60 * s, '2 hours'], [47 * 3600 * s, '47 hours'], [48 * 3600 * s, '2 days'],
      [14 * 86400 * s, '2 weeks'], [60 * 86400 * s, '2 months'], [2 * 365 * 86400 * s, '2 years'],
    ];
    for (const [ms, text] of cases) assert.equal(humanDuration(ms), text, `${ms} ms`);
    assert.equal(timeAgo(Date.now() - 150_000), '2 minutes ago');
  });

  test('progress bars (JSONProgress.String)', () => {
    assert.equal(progressString({ current: 0, total: 0 }, 200), '');
    assert.equal(progressString({ current: 500_000, total: 1_000_000 }, 200), `[${'='.repeat(25)}>${' '.repeat(25)}]    500kB/1MB`);
    assert.equal(progressString({ current: 500_000, total: 1_000_000 }, 80), '   500kB/1MB', 'no bar on narrow terminals');
    assert.equal(progressString({ current: 2_000_000, total: 1_000_000 }, 80), '     2MB', 'a wonky current hides the total');
    assert.equal(progressString({ current: 1234 }, 200), ' 1.234kB');
    assert.equal(progressString({ current: 3, total: 10, units: 'items' }, 80), '3/10 items');
    const start = 1_795_000_000;
    assert.equal(progressString({ current: 250, total: 1000, start }, 80, (start + 10) * 1000), '    250B/1kB 30s', '10 s for a quarter: 30 s left');
  });
});

describe('tabwriter', () => {
  test('docker ps / images layout: minwidth 10, padding 3, last column unaligned', () => {
    const text = 'REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nbusybox\tlatest\tabcdef012345\t2 weeks ago\t4.26MB\nlocalhost:5000/very/long/name\t1\t0123456789ab\tAbout an hour ago\t1.2GB\n';
    assert.equal(tabwrite(text, DOCKER_TABLE), [
      'REPOSITORY                      TAG       IMAGE ID       CREATED             SIZE',
      'busybox                         latest    abcdef012345   2 weeks ago         4.26MB',
      'localhost:5000/very/long/name   1         0123456789ab   About an hour ago   1.2GB',
      '',
    ].join('\n'));
  });

  test('column blocks: a line without the cell ends the block (Go semantics)', () => {
    const text = 'a\tb\nlonger cell\tc\nno tabs here\nx\ty\n';
    assert.equal(tabwrite(text, { minWidth: 0, padding: 1 }), 'a           b\nlonger cell c\nno tabs here\nx y\n');
    assert.equal(tabwrite(' Version:\t1\n API version:\t1.47\n', DOCKER_VERSION_TABLE), ' Version:           1\n API version:       1.47\n');
    assert.equal(tabwrite('é\tx\nab\ty\n', { minWidth: 0, padding: 1 }), 'é  x\nab y\n', 'widths count characters, not bytes');
  });
});

describe('templates', () => {
  const t = (src: string, data: unknown): string => Template.parse(src).execute(data);

  test('fields, json, pipelines, functions', () => {
    const data = { ID: 'abc', Names: ['a', 'b'], Labels: { z: '1', a: '2' }, Size: 3, Nested: { Deep: { V: 'x<y' } } };
    assert.equal(t('{{.ID}}', data), 'abc');
    assert.equal(t('{{.Nested.Deep.V}}', data), 'x<y');
    assert.equal(t('{{json .Nested}}', data), '{"Deep":{"V":"x<y"}}', 'no HTML escaping, as docker\'s json');
    assert.equal(t('{{.Nested | json}}', data), '{"Deep":{"V":"x<y"}}');
    assert.equal(t('{{join .Names ", "}}', data), 'a, b');
    assert.equal(t('{{upper .ID}} {{.ID | upper | lower}}', data), 'ABC abc');
    assert.equal(t('{{.Names}} {{.Labels}}', data), '[a b] map[a:2 z:1]');
    assert.equal(t('{{index .Labels "z"}} {{len .Names}}', data), '1 2');
    assert.equal(t('{{printf "%5s|%-3d|" .ID .Size}}', data), '  abc|3  |');
    assert.equal(t('{{.Missing}}', data), '<no value>', 'a missing map key, as Go');
    assert.equal(t('{{pad .ID 1 2}}|{{truncate .ID 2}}|{{title "hello world"}}', data), ' abc  |ab|Hello World');
    assert.equal(t('{{(index .Names 1) | upper}}', data), 'B');
    assert.equal(t('{{json .Big}}', { Big: 1795831961906852878n }), '1795831961906852878');
  });

  test('if / else if / else, range, with, variables, trim markers, comments', () => {
    const data = { Ports: [{ P: 80 }, { P: 443 }], Tty: false, Env: {}, Name: 'web', Map: { b: 2, a: 1 } };
    assert.equal(t('{{if .Tty}}tty{{else if .Name}}named{{else}}none{{end}}', data), 'named');
    assert.equal(t('{{range .Ports}}{{.P}},{{end}}', data), '80,443,');
    assert.equal(t('{{range $i, $p := .Ports}}{{$i}}={{$p.P}} {{end}}', data), '0=80 1=443 ');
    assert.equal(t('{{range $k, $v := .Map}}{{$k}}:{{$v}};{{end}}', data), 'a:1;b:2;', 'maps iterate in key order');
    assert.equal(t('{{range .Env}}x{{else}}empty{{end}}', data), 'empty');
    assert.equal(t('{{with .Name}}[{{.}}]{{end}}', data), '[web]');
    assert.equal(t('{{$n := .Name}}{{range .Ports}}{{$n}}{{end}}', data), 'webweb');
    assert.equal(t('a  {{- /* gone */ -}}  b {{- " c" }}', data), 'ab c');
    assert.equal(t('{{if and .Name (not .Tty)}}yes{{end}} {{if eq .Name "web" "db"}}eq{{end}} {{if gt (len .Ports) 1}}many{{end}}', data), 'yes eq many');
  });

  test('errors: unknown fields of structs, unknown functions, syntax', () => {
    class Row { static goType = 'formatter.ContainerContext'; ID = 'x'; get Names(): string { return 'n'; } }
    assert.equal(t('{{.ID}} {{.Names}}', new Row()), 'x n');
    assert.throws(() => t('{{.Nope}}', new Row()), (e: Error) => e instanceof TemplateError && /can't evaluate field Nope in type formatter\.ContainerContext/.test(e.message));
    assert.throws(() => Template.parse('{{nofunc .}}').execute({}), /function "nofunc" not defined/);
    assert.throws(() => Template.parse('{{if .X}}unclosed'), /unexpected EOF/);
    assert.throws(() => Template.parse('{{.X'), /unclosed action/);
    assert.throws(() => Template.parse('{{end}}'), /unexpected \{\{end\}\}/);
  });

  test('docker\'s list formatting: table headers, json, -q, \\t escapes', () => {
    const rows = [{ ID: 'a1', Image: 'busybox', Status: 'Up 2 minutes' }, { ID: 'b22222', Image: 'localhost:5000/x', Status: 'Exited (0)' }];
    const spec = { defaultTable: 'table {{.ID}}\\t{{.Image}}\\t{{.Status}}', headers: { ID: 'CONTAINER ID', Image: 'IMAGE', Status: 'STATUS' } };
    assert.equal(renderList(rows, spec), [
      'CONTAINER ID   IMAGE              STATUS',
      'a1             busybox            Up 2 minutes',
      'b22222         localhost:5000/x   Exited (0)',
      '',
    ].join('\n'));
    assert.equal(renderList(rows, { ...spec, format: 'table' }), renderList(rows, spec));
    assert.equal(renderList(rows, { ...spec, quiet: true }), 'a1\nb22222\n');
    assert.equal(renderList(rows, { ...spec, format: '{{.ID}}: {{.Image}}' }), 'a1: busybox\nb22222: localhost:5000/x\n');
    assert.equal(renderList(rows, { ...spec, format: 'json' }), '{"ID":"a1","Image":"busybox","Status":"Up 2 minutes"}\n{"ID":"b22222","Image":"localhost:5000/x","Status":"Exited (0)"}\n');
    assert.equal(renderList(rows, { ...spec, format: 'table {{.ID | json}}\\t{{upper .Image}}' }), 'CONTAINER ID   IMAGE\n"a1"           BUSYBOX\n"b22222"       LOCALHOST:5000/X\n', 'header functions leave headers alone');
    assert.equal(renderList([], spec), 'CONTAINER ID   IMAGE     STATUS\n');
    assert.equal(renderObject({ A: 1 }, 'json'), '{"A":1}\n');
    assert.throws(() => renderList(rows, { ...spec, format: '{{.ID' }), /template parsing error/);
  });
});

describe('progress rendering (docker\'s jsonmessage)', () => {
  const stream = [
    { status: 'Pulling from library/busybox', id: 'latest' },
    { status: 'Pulling fs layer', id: 'aaa' },
    { status: 'Pulling fs layer', id: 'bbb' },
    { status: 'Downloading', progressDetail: { current: 500, total: 1000 }, progress: '[==>  ] 500B/1kB', id: 'aaa' },
    { status: 'Download complete', id: 'aaa' },
    { status: 'Pull complete', id: 'aaa' },
    { status: 'Digest: sha256:00' },
    { status: 'Status: Downloaded newer image for busybox:latest' },
  ];
  const toStream = (msgs: object[]): Readable => Readable.from(msgs.map((m) => `${JSON.stringify(m)}\n`));

  test('without a terminal: plain lines, bar updates dropped', async () => {
    let out = '';
    await displayJSONMessages(toStream(stream), { write: (s) => { out += s; }, isTerminal: false });
    assert.equal(out, 'latest: Pulling from library/busybox\naaa: Pulling fs layer\nbbb: Pulling fs layer\naaa: Download complete\naaa: Pull complete\nDigest: sha256:00\nStatus: Downloaded newer image for busybox:latest\n');
  });

  test('on a terminal: one line per layer, rewritten in place', () => {
    let out = '';
    const r = new ProgressRenderer({ write: (s) => { out += s; }, isTerminal: true, columns: () => 80 });
    r.render({ status: 'Pulling fs layer', id: 'aaa', progressDetail: {} });
    r.render({ status: 'Pulling fs layer', id: 'bbb', progressDetail: {} });
    r.render({ status: 'Downloading', id: 'aaa', progressDetail: { current: 500, total: 1000 } });
    assert.equal(out,
      '\n\x1b[1A\x1b[2K\raaa: Pulling fs layer \r\x1b[1B' +
      '\n\x1b[1A\x1b[2K\rbbb: Pulling fs layer \r\x1b[1B' +
      '\x1b[2A\x1b[2K\raaa: Downloading     500B/1kB\r\x1b[2B');
  });

  test('an error line ends the stream with its message; aux goes to the callback', async () => {
    const aux: unknown[] = [];
    await assert.rejects(
      displayJSONMessages(toStream([{ aux: { ID: 'sha256:1' } }, { status: 'x' }, { errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' }, { status: 'never' }]),
        { write: () => {}, isTerminal: false, onAux: (m) => aux.push(m.aux) }),
      (e: Error) => e instanceof StreamError && e.message === 'manifest unknown');
    assert.deepEqual(aux, [{ ID: 'sha256:1' }]);
  });
});

test('--since/--until values (docker\'s GetTimestamp)', () => {
  const now = Date.UTC(2026, 10, 28, 12, 0, 0);
  assert.equal(getTimestamp('10m', now), String(now / 1000 - 600));
  assert.equal(getTimestamp('1h30m', now), String(now / 1000 - 5400));
  assert.equal(getTimestamp('1795831961'), '1795831961');
  assert.equal(getTimestamp('1795831961.5'), '1795831961.5');
  assert.equal(getTimestamp('2026-11-28T12:00:00Z'), `${now / 1000}.000000000`);
  assert.equal(getTimestamp('2026-11-28T12:00:00.25+01:00'), `${now / 1000 - 3600}.250000000`);
  assert.equal(getTimestamp('0'), '0');
  assert.throws(() => getTimestamp('2026-13-99T'), /parsing time/);
  assert.throws(() => getTimestamp('yesterday'), /failed to parse value as time or duration/);
});
