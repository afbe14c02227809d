import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

/**
 * The direction of imports docs/architecture.md describes ("Direction of imports"): `core` imports nothing from
 * `src/`, a folder is used by the others only through its `index.ts`, and no two folders need each other, however
 * indirectly (nor two files). Checked on the source text, so a new import that breaks a rule fails here before it tangles the tree.
 */

const SRC = path.resolve(import.meta.dirname, '..', '..', 'src');

/**
 * `core/allowlist.ts` is also re-exported by `core/index.ts`; the sandbox imports it directly. The CLI's formatters
 * take two pure helper files directly, so printing a list does not load all of core (docs/architecture.md).
 */
const ALLOWED_DEEP = new Set([
  'sandbox/egress-proxy.ts -> core/allowlist.ts',
  'sandbox/bubblewrap.ts -> core/allowlist.ts',
  'cli/format.ts -> core/capabilities.ts',
  'cli/format.ts -> core/command-line.ts',
]);

type Import = { from: string; to: string };

async function sourceFiles(dir = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(path.join(SRC, dir), { withFileTypes: true })) {
    const relative = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await sourceFiles(relative)));
    else if (entry.name.endsWith('.ts')) found.push(relative);
  }
  return found;
}

/** Every relative import and re-export of the source files, as paths under `src/`. */
async function relativeImports(): Promise<Import[]> {
  const imports: Import[] = [];
  for (const file of await sourceFiles()) {
    const text = await readFile(path.join(SRC, file), 'utf8');
    for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)) {
      const specifier = match[1] ?? match[2] ?? '';
      imports.push({ from: file, to: path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier)) });
    }
  }
  return imports;
}

/** The top-level part a file belongs to: its folder under `src/`, or the file itself (`compose.ts`, `main.ts`). */
function partOf(file: string): string {
  return file.split('/')[0] ?? file;
}

/** Each cycle of `edges`, once, as the list of nodes it passes through. */
function cyclesOf(edges: Map<string, Set<string>>): string[] {
  const cycles = new Set<string>();
  const done = new Set<string>();
  const visit = (node: string, trail: string[]): void => {
    if (trail.includes(node)) {
      const cycle = trail.slice(trail.indexOf(node));
      const start = cycle.indexOf([...cycle].sort()[0] ?? node);
      cycles.add([...cycle.slice(start), ...cycle.slice(0, start), cycle[start]].join(' -> '));
      return;
    }
    if (done.has(node)) return;
    for (const next of edges.get(node) ?? []) visit(next, [...trail, node]);
    done.add(node);
  };
  for (const node of edges.keys()) visit(node, []);
  return [...cycles];
}

function graphOf(imports: Import[], nodeOf: (file: string) => string): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const { from, to } of imports) {
    if (nodeOf(from) === nodeOf(to)) continue;
    const next = edges.get(nodeOf(from)) ?? new Set<string>();
    next.add(nodeOf(to));
    edges.set(nodeOf(from), next);
  }
  return edges;
}

test('the parts of src/ import each other as docs/architecture.md says', async () => {
  const imports = await relativeImports();
  assert.ok(imports.length > 100, 'the imports were found');
  const crossing = imports.filter(({ from, to }) => partOf(from) !== partOf(to));

  const fromCore = crossing.filter(({ from }) => partOf(from) === 'core');
  assert.deepEqual(fromCore, [], 'core imports nothing from src/');

  const deep = crossing.filter(({ from, to }) => partOf(to).endsWith('.ts') === false && to !== `${partOf(to)}/index.ts`);
  assert.deepEqual(
    deep.filter(({ from, to }) => !ALLOWED_DEEP.has(`${from} -> ${to}`)),
    [],
    'another folder is used only through its index.ts',
  );

  assert.deepEqual(cyclesOf(graphOf(imports, partOf)), [], 'no two parts need each other');
  assert.deepEqual(cyclesOf(graphOf(imports, (file) => file)), [], 'no two files need each other');
});
