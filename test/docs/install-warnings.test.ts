import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

/**
 * README.md ("Which Node") says which dependencies make `npm install` on a system Node 20 warn `EBADENGINE`: npm
 * compares each installed package's `engines.node` (recorded in package-lock.json) with the Node that runs npm. The
 * Node checked is the lowest that package.json's `devEngines` lets run npm.
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');

type Version = [number, number, number];

function parse(text: string): Version {
  const [major = 0, minor = 0, patch = 0] = text.split('.').map((part) => (/^\d+$/.test(part) ? Number(part) : 0));
  return [major, minor, patch];
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * Whether `version` satisfies an `engines.node` range of the forms the lock holds: `||` alternatives of `*`,
 * `>=`, `>`, `<`, `<=`, `^`, `X.x` and plain versions (a plain `X` or `X.Y` is a wildcard).
 */
function satisfies(version: Version, range: string): boolean {
  return range.split('||').some((alternative) => {
    const comparators = alternative.replace(/([<>]=?|\^)\s+/g, '$1').trim().split(/\s+/).filter(Boolean);
    return comparators.every((comparator) => {
      const [, op = '', rest = ''] = /^([<>]=?|\^|=)?(.*)$/.exec(comparator) ?? [];
      if (rest === '*' || rest === 'x' || rest === '') return true;
      const parts = rest.split('.');
      const bound = parse(rest);
      if (op === '>=') return compare(version, bound) >= 0;
      if (op === '>') return compare(version, bound) > 0;
      if (op === '<') return compare(version, bound) < 0;
      if (op === '<=') return compare(version, bound) <= 0;
      if (op === '^') return version[0] === bound[0] && compare(version, bound) >= 0;
      const fixed = parts.filter((part) => /^\d+$/.test(part)).length;
      return bound.slice(0, fixed).every((part, index) => version[index] === part);
    });
  });
}

test('README names the dependencies whose engines make npm warn on the lowest Node that may run npm, and only those', async () => {
  const manifest = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  const lowest = parse(/\^?(\d+\.\d+\.\d+)/.exec(manifest.devEngines.runtime.version)?.[1] ?? '');
  assert.equal(lowest[0], 20, 'the README paragraph speaks of Node 20');
  const lock = JSON.parse(await readFile(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const warned = new Set<string>();
  for (const [where, entry] of Object.entries<{ engines?: { node?: string } }>(lock.packages)) {
    // The root package's own engines is forgelink's (Node 24); npm checks devEngines in its place.
    if (where === '' || entry.engines?.node === undefined) continue;
    if (!satisfies(lowest, entry.engines.node)) warned.add(where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length));
  }
  // The range reader itself: what it must say of ranges the lock holds.
  assert.ok(satisfies(lowest, '>= 10.x') && satisfies(lowest, '^16 || ^18 || >=20') && satisfies(lowest, '*'));
  assert.ok(!satisfies(lowest, '^22.0.0 || ^24.0.0 || >=26.0.0') && !satisfies([24, 1, 0], '>=24 <24.1') && satisfies([24, 1, 0], '>=24 <25'));

  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('On a system Node 20,');
  assert.ok(start >= 0, 'README.md says what npm prints on a system Node 20');
  const sentence = readme.slice(start, readme.indexOf('harmless', start));
  assert.doesNotMatch(sentence, /no warning/);
  const named = new Set([...sentence.matchAll(/`([@a-z0-9./-]+)`/g)].map((match) => match[1] as string).filter((name) => warned.has(name) || name in manifest.dependencies || name in manifest.devDependencies || lock.packages[`node_modules/${name}`] !== undefined));
  assert.deepEqual([...named].sort(), [...warned].sort());
});
