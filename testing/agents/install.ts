/**
 * `postinstall` of forgelink's package: installs the agent CLIs the tests and the demo run (testing/agents/
 * package.json) with npm running on the pinned Node 24, into node_modules/.forgelink-agents.
 *
 * Why apart: the system Node that runs `npm install` may be older (README, "Which Node"), and npm checks every
 * package's `engines` against the Node that runs npm. `@anthropic-ai/claude-code` asks for Node 22 or later;
 * in the root install npm would warn that Node 20 is unsupported, although forgelink never runs the package
 * on that Node. Here npm runs on the Node 24 that does run it, so its `engines` check is a real one.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..', '..');
const source = path.join(root, 'testing', 'agents');
const AGENTS_DIR = path.join(root, 'node_modules', '.forgelink-agents');

const omitted = (process.env.npm_config_omit ?? '').split(/[\s,]+/);
if (omitted.includes('dev') || process.env.NODE_ENV === 'production') {
  process.exit(0); // a production install: no test tools
}
const npm = process.env.npm_execpath;
if (npm === undefined || npm === '') {
  process.stderr.write('testing/agents/install.ts: run by npm install (npm_execpath is not set)\n');
  process.exit(1);
}

const wanted = await readFile(path.join(source, 'package-lock.json'), 'utf8');
const installed = await readFile(path.join(AGENTS_DIR, 'package-lock.json'), 'utf8').catch(() => null);
const complete = await readFile(path.join(AGENTS_DIR, 'node_modules', '.package-lock.json'), 'utf8').then(() => true, () => false);
if (installed === wanted && complete) process.exit(0);

await mkdir(AGENTS_DIR, { recursive: true });
for (const file of ['package.json', 'package-lock.json']) await copyFile(path.join(source, file), path.join(AGENTS_DIR, file));
const result = spawnSync(process.execPath, [npm, 'ci', '--no-audit', '--no-fund', '--prefix', AGENTS_DIR], { stdio: 'inherit' });
process.exit(result.status ?? 1);
