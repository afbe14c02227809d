import { lstat, mkdir, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Directories and files the sandbox mounts over in an image's read-only root (src/sandbox/bwrap-args.ts):
 * they are made once, right after the image is unpacked, since nothing can be created in the tree later.
 */
const MOUNT_DIRS = ['proc', 'dev', 'tmp', 'run/forgelink', 'home/agent', 'workspace', 'etc/forgelink', 'opt/forgelink/mirror'];
const MOUNT_FILES = ['etc/passwd', 'etc/group', 'etc/hosts', 'etc/nsswitch.conf', 'etc/hostname'];

/** What every command in a sandbox needs from the image: the wrapper's shell, its network bridge, and git for the clone. */
export const REQUIRED_TOOLS = [
  { names: ['bin/sh', 'usr/bin/sh'], what: '/bin/sh', pkg: 'dash' },
  { names: ['usr/bin/socat', 'bin/socat', 'usr/local/bin/socat'], what: 'socat', pkg: 'socat' },
  { names: ['usr/bin/git', 'bin/git', 'usr/local/bin/git'], what: 'git', pkg: 'git' },
] as const;

/**
 * Makes `rel` a real directory inside `root`, never following a link: an image's `home -> /somewhere` must not
 * make forgelink create directories on the host. A link or file in the way is replaced (this is forgelink's own
 * copy of the tree, and the sandbox mounts over these paths anyway).
 */
async function ensureDir(root: string, rel: string): Promise<void> {
  let current = root;
  for (const part of rel.split('/')) {
    current = path.join(current, part);
    const info = await lstat(current).catch(() => null);
    if (info?.isDirectory()) continue;
    if (info !== null) await rm(current, { force: true });
    await mkdir(current, { mode: 0o755 });
  }
}

async function ensureFile(root: string, rel: string): Promise<void> {
  await ensureDir(root, path.dirname(rel));
  const file = path.join(root, rel);
  const info = await lstat(file).catch(() => null);
  if (info?.isFile()) return;
  if (info !== null) await rm(file, { recursive: true, force: true });
  await writeFile(file, '', { mode: 0o644 });
}

/**
 * Follows `rel` inside `root` as the sandbox would see it (absolute links point into the root), at most 40
 * links deep; true when it ends at an executable file.
 */
async function existsInRoot(root: string, rel: string): Promise<boolean> {
  let parts = rel.split('/').filter((part) => part !== '');
  const resolved: string[] = [];
  for (let hops = 0; parts.length > 0 && hops < 40; ) {
    const part = parts.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const at = path.join(root, ...resolved, part);
    const info = await lstat(at).catch(() => null);
    if (info === null) return false;
    if (info.isSymbolicLink()) {
      hops += 1;
      const target = await readlink(at);
      if (target.startsWith('/')) resolved.length = 0;
      parts = [...target.split('/').filter((piece) => piece !== ''), ...parts];
      continue;
    }
    resolved.push(part);
    if (parts.length === 0) return info.isFile() && (info.mode & 0o111) !== 0;
  }
  return false;
}

/** Makes the sandbox's mount points in an unpacked root; returns the required tools the image lacks, as users name them. */
export async function prepareRoot(root: string): Promise<string[]> {
  for (const dir of MOUNT_DIRS) await ensureDir(root, dir);
  for (const file of MOUNT_FILES) await ensureFile(root, file);
  const missing: string[] = [];
  for (const tool of REQUIRED_TOOLS) {
    let found = false;
    for (const name of tool.names) if (!found && (await existsInRoot(root, name))) found = true;
    if (!found) missing.push(`${tool.what} (Debian package ${tool.pkg})`);
  }
  return missing;
}
