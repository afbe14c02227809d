import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ForgelinkError, InputError } from '../core/index.ts';
import { lastError, runTool, TOOL_PATH } from './tools.ts';

/** The recipe (a bash script, readable and copyable by operators who want their own image). */
export const AGENT_RECIPE = fileURLToPath(new URL('../../images/agent/recipe.sh', import.meta.url));

/**
 * Codex is not one of forgelink's npm dependencies (nothing here runs it on the host), so its version is pinned
 * here; Node's and Claude Code's come from package.json, where the tests pin them.
 */
const CODEX_VERSION = '0.171.0';

export type AgentImageVersions = { node: string; claudeCode: string; codex: string };

export type AgentImageOptions = {
  /** The OCI layout to write (tag `agent`); replaced only when a build succeeds. */
  outDir: string;
  /** Debian packages and npm packages (`name@version`) to add: an operator's own tools. */
  extraPackages?: string[];
  extraNpm?: string[];
  /** Debian suite (default bookworm) and mirror (default mmdebstrap's). */
  suite?: string;
  mirror?: string;
  progress?: (line: string) => void;
  /** Build even when the layout was made by the same recipe and inputs. */
  force?: boolean;
};

export type AgentImageResult = { ref: string; recipeHash: string; cached: boolean; seconds: number };

const HASH_FILE = 'forgelink-recipe.sha256';

function definedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/**
 * The versions the repository pins: Node (package.json's `node` dev dependency), Codex (its `@openai/codex`) and
 * Claude Code (testing/agents/package.json, where it is installed on the pinned Node; README, "Which Node").
 */
export async function agentImageVersions(): Promise<AgentImageVersions> {
  const read = async (file: string) => JSON.parse(await readFile(new URL(file, import.meta.url), 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
  const root = await read('../../package.json');
  const agents = await read('../../testing/agents/package.json');
  const node = root.devDependencies?.node;
  const codex = root.devDependencies?.['@openai/codex'] ?? CODEX_VERSION;
  const claudeCode = agents.dependencies?.['@anthropic-ai/claude-code'];
  if (node === undefined || claudeCode === undefined) {
    throw new ForgelinkError('image_recipe_broken', 'package.json pins no node version, or testing/agents/package.json no @anthropic-ai/claude-code version.');
  }
  return { node, claudeCode, codex };
}

function checkExtras(options: AgentImageOptions): void {
  for (const pkg of options.extraPackages ?? []) {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(pkg)) throw new InputError('invalid_package', `"${pkg}" is not a Debian package name.`, { field: 'package' });
  }
  for (const pkg of options.extraNpm ?? []) {
    if (!/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+(@[A-Za-z0-9._^~<>=-]+)?$/.test(pkg)) throw new InputError('invalid_npm_package', `"${pkg}" is not an npm package (name@version).`, { field: 'npm' });
  }
  if (options.suite !== undefined && !/^[a-z]+$/.test(options.suite)) throw new InputError('invalid_suite', `"${options.suite}" is not a Debian suite name.`, { field: 'suite' });
  if (options.mirror !== undefined && !/^https?:\/\/\S+$/.test(options.mirror)) throw new InputError('invalid_mirror', `"${options.mirror}" is not an http(s) mirror URL.`, { field: 'mirror' });
}

/** What a build depends on: the recipe's text and every input; the same hash means the same image. */
export async function agentRecipeHash(options: Omit<AgentImageOptions, 'outDir' | 'progress' | 'force'> = {}): Promise<string> {
  const inputs = {
    versions: await agentImageVersions(),
    extraPackages: options.extraPackages ?? [],
    extraNpm: options.extraNpm ?? [],
    suite: options.suite ?? 'bookworm',
    mirror: options.mirror ?? null,
  };
  return createHash('sha256').update(await readFile(AGENT_RECIPE)).update(JSON.stringify(inputs)).digest('hex');
}

/**
 * Builds the reference agent image with the recipe (mmdebstrap, npm, umoci; minutes), or keeps the layout
 * already at `outDir` when it was built from the same recipe and inputs.
 */
export async function buildAgentImage(options: AgentImageOptions): Promise<AgentImageResult> {
  checkExtras(options);
  const outDir = path.resolve(options.outDir);
  const ref = `oci:${outDir}:agent`;
  const recipeHash = await agentRecipeHash(options);
  const progress = options.progress ?? (() => {});
  const built = await readFile(path.join(outDir, HASH_FILE), 'utf8').catch(() => null);
  if (options.force !== true && built?.trim() === recipeHash && (await stat(path.join(outDir, 'index.json')).catch(() => null)) !== null) {
    progress(`The image at ${outDir} was built by this recipe already (${recipeHash.slice(0, 12)})`);
    return { ref, recipeHash, cached: true, seconds: 0 };
  }
  for (const [tool, pkg] of [['/usr/bin/mmdebstrap', 'mmdebstrap'], ['/usr/bin/umoci', 'umoci']] as const) {
    if ((await stat(tool).catch(() => null)) === null) throw new ForgelinkError('image_tool_missing', `Building the agent image needs ${tool} (apt-get install ${pkg}).`);
  }
  const versions = await agentImageVersions();
  await mkdir(path.dirname(outDir), { recursive: true });
  const started = Date.now();
  const result = await runTool('/bin/bash', [AGENT_RECIPE], {
    onLine: progress,
    env: {
      // The operator's own environment (their proxy and CA settings reach npm and apt), then the recipe's inputs.
      ...definedEnv(process.env),
      // Node 24 first, so npm's install scripts (Claude Code's) run on it; npm from the host.
      PATH: `${path.dirname(process.execPath)}:/usr/local/bin:${TOOL_PATH}`,
      OUT: outDir,
      WORK: `${outDir}.work`,
      TAG: 'agent',
      NODE_VERSION: versions.node,
      CLAUDE_CODE_VERSION: versions.claudeCode,
      CODEX_VERSION: versions.codex,
      SUITE: options.suite ?? 'bookworm',
      MIRROR: options.mirror ?? '',
      EXTRA_PACKAGES: (options.extraPackages ?? []).join(','),
      EXTRA_NPM: (options.extraNpm ?? []).join(' '),
    },
  });
  if (result.code !== 0) throw new ForgelinkError('image_build_failed', `Building the agent image failed: ${lastError(result)}`);
  await writeFile(path.join(outDir, HASH_FILE), `${recipeHash}\n`);
  return { ref, recipeHash, cached: false, seconds: Math.round((Date.now() - started) / 1000) };
}
