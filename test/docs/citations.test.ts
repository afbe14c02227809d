import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

/**
 * Whoever clones the repository can follow every reference: a comment that cites a document names one in the
 * repository, a link in README.md or docs/ leads to a file (and heading) that exists, and a source or test file
 * the docs name is there. GitLab's own documentation is cited by its path in GitLab's repository (`doc/api/…`,
 * `api/…`), which always has a folder before the name; those are not ours to check.
 */

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CODE_DIRS = ['src', 'test', 'testing', 'bench', 'examples', 'bin'];
const SKIP_DIRS = new Set(['node_modules', '.git']);

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(path.join(ROOT, dir), { withFileTypes: true })) {
    if (SKIP_DIRS.has(entry.name)) continue;
    const relative = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(relative)));
    else if (entry.isFile()) found.push(relative);
  }
  return found;
}

async function exists(relative: string): Promise<boolean> {
  return stat(path.join(ROOT, relative)).then(
    () => true,
    () => false,
  );
}

/** Text files only: a NUL byte marks a binary one. */
async function text(relative: string): Promise<string | null> {
  const content = await readFile(path.join(ROOT, relative));
  return content.includes(0) ? null : content.toString('utf8');
}

/**
 * The comment part of a line of code: the whole line when it is a comment line (`*`, `/*`, `//`, `#`), else what
 * follows ` // ` or ` # `. File names in string literals (a file an agent writes, say) are data, not citations.
 */
export function commentOf(line: string): string {
  const trimmed = line.trimStart();
  if (/^(\*|\/\*|\/\/|#)/.test(trimmed)) return trimmed;
  const inline = /\s(\/\/|#)\s(.*)$/.exec(line);
  return inline?.[2] ?? '';
}

/**
 * The repository documents a line names: `docs/<name>.md` anywhere in it, and in its comment a bare `<NAME>.md` or
 * `<name>.md` (no folder before it, so not GitLab's `doc/api/<name>.md`), which must be at the root or in docs/.
 */
export function citedDocuments(line: string): { docsPaths: string[]; bareNames: string[] } {
  const docsPaths = [...line.matchAll(/(?<![\w.-])docs\/[\w./-]*?[\w-]+\.md\b/g)].map((match) => match[0]);
  const bareNames = [...commentOf(line).matchAll(/(?<![\w./-])[\w-]+(?:\.[\w-]+)*\.md\b/g)].map((match) => match[0]);
  return { docsPaths, bareNames };
}

test('the citation finder tells repository documents from GitLab documentation paths', () => {
  // Built from parts, so this file itself cites no missing document.
  const shared = `${['SHARED', 'NOTES'].join('-')}.md`;
  const cases: [string, { docsPaths: string[]; bareNames: string[] }][] = [
    [' * (docs/security.md, invariant 4)', { docsPaths: ['docs/security.md'], bareNames: [] }],
    ['// see README.md and ../docs/gitlab.md', { docsPaths: ['docs/gitlab.md'], bareNames: ['README.md'] }],
    [' * (GitLab docs: api/projects.md, "List all projects")', { docsPaths: [], bareNames: [] }],
    ['/** doc/user/project/repository/branches/protected.md */', { docsPaths: [], bareNames: [] }],
    ['# https://docs.gitlab.com/ee/api/oauth2.html', { docsPaths: [], bareNames: [] }],
    [`  x = 1; // (${shared}, "Tokens")`, { docsPaths: [], bareNames: [shared] }],
    [`    # retry (${shared})`, { docsPaths: [], bareNames: [shared] }],
    ['    with open("README.md") as readme:', { docsPaths: [], bareNames: [] }],
  ];
  for (const [line, expected] of cases) assert.deepEqual(citedDocuments(line), expected, line);
});

test('every document a comment in the code cites is in the repository', async () => {
  const missing: string[] = [];
  for (const dir of CODE_DIRS) {
    for (const file of await filesUnder(dir)) {
      const content = await text(file);
      if (content === null) continue;
      for (const [index, line] of content.split('\n').entries()) {
        const { docsPaths, bareNames } = citedDocuments(line);
        for (const cited of docsPaths) {
          if (!(await exists(cited))) missing.push(`${file}:${index + 1} cites ${cited}`);
        }
        for (const name of bareNames) {
          if (!(await exists(name)) && !(await exists(`docs/${name}`))) missing.push(`${file}:${index + 1} cites ${name}`);
        }
      }
    }
  }
  assert.deepEqual(missing, [], `cited documents that are not in the repository:\n${missing.join('\n')}`);
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces become dashes. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

async function anchorsOf(relative: string): Promise<Set<string>> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of ((await text(relative)) ?? '').split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (!heading) continue;
    const base = anchorOf(heading[1] as string);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

test('every link in README.md and docs/ leads to a file and heading of the repository', async () => {
  const documents = ['README.md', ...(await filesUnder('docs')).filter((file) => file.endsWith('.md'))];
  assert.ok(documents.includes('docs/architecture.md') && documents.includes('docs/security.md'), 'docs/ is missing');
  const broken: string[] = [];
  for (const document of documents) {
    const content = (await text(document)) ?? '';
    for (const match of content.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1] as string;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const resolved = file === '' ? document : path.posix.normalize(path.posix.join(path.posix.dirname(document), file));
      if (!(await exists(resolved))) {
        broken.push(`${document}: ${target} (no ${resolved})`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md') && !(await anchorsOf(resolved)).has(anchor)) {
        broken.push(`${document}: ${target} (no heading #${anchor} in ${resolved})`);
      }
    }
  }
  assert.deepEqual(broken, [], `broken links:\n${broken.join('\n')}`);
});

test('README.md links to each page of docs/', async () => {
  const readme = (await text('README.md')) ?? '';
  for (const page of (await filesUnder('docs')).filter((file) => file.endsWith('.md'))) {
    assert.ok(readme.includes(`](${page}`), `README.md does not link to ${page}`);
  }
});

test('every file of the repository that README.md and docs/ name by path exists', async () => {
  const documents = ['README.md', ...(await filesUnder('docs')).filter((file) => file.endsWith('.md'))];
  const missing: string[] = [];
  for (const document of documents) {
    const content = (await text(document)) ?? '';
    for (const match of content.matchAll(/(?<![\w./-])((?:src|test|testing|bench|examples|bin)\/[\w./-]*[\w-])(?![\w./*<-])/g)) {
      const named = match[1] as string;
      if (!(await exists(named))) missing.push(`${document} names ${named}`);
    }
  }
  assert.deepEqual(missing, [], `paths in the docs that are not in the repository:\n${missing.join('\n')}`);
});
