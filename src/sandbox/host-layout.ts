import { lstat, readdir, readlink } from 'node:fs/promises';
import type { HostLayout } from './bwrap-args.ts';

const TOP_LEVEL = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * The parts of the host's /etc that git, curl, python3 and node need, and nothing else: no passwd or
 * shadow (generated instead), no resolv.conf (there is no DNS inside; the proxy resolves on the host), no
 * gitconfig, no /etc/ssl/private. When forgelink runs as root the agent's uid maps to root on the host, so
 * it could read root-only files in whatever is bound here; these are all public.
 */
const ETC = [
  '/etc/alternatives', // Debian's /usr/bin/* → /etc/alternatives/* links (awk, editor, …)
  '/etc/ld.so.cache',
  '/etc/ld.so.conf',
  '/etc/ld.so.conf.d',
  '/etc/ssl/certs', // the CA bundle curl, git and python use
  '/etc/ssl/openssl.cnf',
  '/etc/pki', // the same on RHEL-like systems
  '/etc/localtime',
  '/etc/mime.types',
  '/etc/os-release',
  '/etc/protocols',
  '/etc/services',
];

async function kind(path: string): Promise<'symlink' | 'other' | 'missing'> {
  try {
    return (await lstat(path)).isSymbolicLink() ? 'symlink' : 'other';
  } catch {
    return 'missing';
  }
}

/** Looks at the host once: which top-level directories are usr-merge links, which /etc parts exist. */
export async function detectHostLayout(): Promise<HostLayout> {
  const topLevel: HostLayout['topLevel'] = [];
  for (const path of TOP_LEVEL) {
    const found = await kind(path);
    if (found === 'missing') continue;
    topLevel.push({ path, symlinkTarget: found === 'symlink' ? await readlink(path) : null });
  }
  const etc: string[] = [];
  for (const path of ETC) if ((await kind(path)) !== 'missing') etc.push(path);
  // Debian's python3 reads /etc/python3.X/sitecustomize.py through a link in /usr/lib.
  for (const name of await readdir('/etc').catch(() => [])) {
    if (/^python3(\.\d+)?$/.test(name)) etc.push(`/etc/${name}`);
  }
  return { topLevel, etc };
}
