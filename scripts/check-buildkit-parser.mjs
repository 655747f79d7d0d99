// Dev-time conformance check of the Dockerfile front end against BuildKit's public test data:
//   node --import tsx scripts/check-buildkit-parser.mjs <buildkit checkout>
// Reads frontend/dockerfile/parser/testfiles (Dockerfile + expected AST dump), testfiles-negative
// (must fail), shell/envVarTest (word expansion) and shell/wordsTest (word splitting). Nothing of BuildKit is copied here; the
// checkout is read where it lies. Prints the counts and every mismatch.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
const { parseDockerfile, dumpNode } = await import('../src/build/parser.ts');
const { parseDefinition } = await import('../src/build/instructions.ts');
const { expandWord, expandWords } = await import('../src/build/shell-lex.ts');

const root = process.argv[2];
if (!root || !existsSync(join(root, 'frontend/dockerfile'))) {
  console.error('usage: check-buildkit-parser.mjs <path of a moby/buildkit checkout>');
  process.exit(2);
}
const base = join(root, 'frontend/dockerfile');
const failures = [];
let pass = 0, total = 0;
for (const name of readdirSync(join(base, 'parser/testfiles')).sort()) {
  const dir = join(base, 'parser/testfiles', name);
  if (!existsSync(join(dir, 'result'))) continue;
  total++;
  try {
    const text = readFileSync(join(dir, 'Dockerfile'), 'utf8');
    const parsed = parseDockerfile(text);
    const got = parsed.nodes.map((n) => `(${dumpNode(n, parsed.escapeToken)})`).join('\n');
    const want = readFileSync(join(dir, 'result'), 'utf8').trim().replace(/\r\n/g, '\n');
    if (got === want) pass++;
    else failures.push(`testfiles/${name}: AST differs\n--- want\n${want}\n--- got\n${got}`);
  } catch (err) {
    failures.push(`testfiles/${name}: threw ${err.message}`);
  }
}
console.log(`parser testfiles: ${pass}/${total}`);
let negPass = 0, negTotal = 0;
for (const name of readdirSync(join(base, 'parser/testfiles-negative')).sort()) {
  negTotal++;
  const text = readFileSync(join(base, 'parser/testfiles-negative', name, 'Dockerfile'), 'utf8');
  try {
    parseDefinition(text);
    failures.push(`testfiles-negative/${name}: parsed without error`);
  } catch {
    negPass++;
  }
}
console.log(`parser testfiles-negative: ${negPass}/${negTotal}`);
const env = ['PWD=/home', 'SHELL=bash', 'KOREAN=한국어', 'NULL='];
let evPass = 0, evTotal = 0;
for (const raw of readFileSync(join(base, 'shell/envVarTest'), 'utf8').split('\n')) {
  if (raw.startsWith('#') || raw.trim() === '') continue;
  const [platform, input, expected] = raw.split('|').map((s, i) => (i === 1 ? s.replace(/^\s+/, '').replace(/\s+$/, '') : s.trim()));
  if (platform === 'W') continue;
  evTotal++;
  let got;
  try { got = expandWord(input, env); } catch { got = 'error'; }
  if (got === expected) evPass++;
  else failures.push(`envVarTest: ${JSON.stringify(input)} want ${JSON.stringify(expected)} got ${JSON.stringify(got)}`);
}
console.log(`shell envVarTest: ${evPass}/${evTotal}`);
// wordsTest: "ENV K=V" lines add to the environment for the lines below; the others are
// "input | word,word,…" where "error" means the expansion must fail.
let wPass = 0, wTotal = 0;
const wenv = [];
for (const raw of readFileSync(join(base, 'shell/wordsTest'), 'utf8').split('\n')) {
  if (raw.startsWith('#') || raw.trim() === '') continue;
  if (raw.startsWith('ENV ')) { wenv.push(raw.slice(3).replace(/^ +/, '')); continue; }
  const bar = raw.indexOf('|');
  const input = raw.slice(0, bar).trim();
  const expected = raw.slice(bar + 1).replace(/^ +/, '').split(',');
  wTotal++;
  let got;
  try { got = expandWords(input, wenv); } catch { got = ['error']; }
  if (JSON.stringify(got) === JSON.stringify(expected)) wPass++;
  else failures.push(`wordsTest: ${JSON.stringify(input)} want ${JSON.stringify(expected)} got ${JSON.stringify(got)}`);
}
console.log(`shell wordsTest: ${wPass}/${wTotal}`);
for (const f of failures) console.log(`\n${f}`);
