import { execFile } from 'node:child_process';
import { chmod, copyFile, lstat, mkdir, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Host programs a run needs in its image: the wrapper's shell and network bridge, git (with its https helper)
 * for the clone, and a few tools the tests call.
 */
const PROGRAMS = [
  '/bin/sh',
  '/usr/bin/socat',
  '/usr/bin/git',
  '/usr/lib/git-core/git-remote-https',
  '/usr/bin/cat',
  '/usr/bin/id',
  '/usr/bin/ls',
  '/usr/bin/touch',
  '/usr/bin/env',
  '/usr/bin/sleep',
];

/** The shared libraries `ldd` says a program needs, the loader included. */
async function librariesOf(program: string): Promise<string[]> {
  const { stdout } = await run('/usr/bin/ldd', [program]);
  const found: string[] = [];
  for (const line of stdout.split('\n')) {
    const match = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (match?.[1] !== undefined) found.push(match[1]);
  }
  return found;
}

/** Copies a host file to the same path under `root`, keeping a link a link (and copying what it points to). */
async function place(root: string, file: string): Promise<void> {
  const dest = path.join(root, file);
  if ((await lstat(dest).catch(() => null)) !== null) return;
  await mkdir(path.dirname(dest), { recursive: true });
  const info = await lstat(file);
  if (info.isSymbolicLink()) {
    const target = await readlink(file);
    await symlink(target, dest);
    await place(root, path.resolve(path.dirname(file), target));
    return;
  }
  await copyFile(file, dest);
  await chmod(dest, info.mode & 0o777);
}

/**
 * A small image assembled from the host's own binaries and libraries (no registry, no download), packed as an
 * OCI layout with umoci: enough for a forgelink run (sh, socat, git) and the tests' commands. `marker` becomes
 * /etc/image-marker, so a test can tell which image a run saw. Returns the layout's `oci:` reference.
 */
export async function buildTinyImage(dir: string, options: { tag?: string; marker?: string; omit?: string[] } = {}): Promise<string> {
  const tag = options.tag ?? 'latest';
  const root = path.join(dir, `rootfs-${tag}`);
  const layout = path.join(dir, 'layout');
  await mkdir(root, { recursive: true });
  // Debian is usr-merged: /bin and /lib are links into /usr, in the image as on the host.
  for (const [link, target] of [['bin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['sbin', 'usr/sbin']] as const) {
    await symlink(target, path.join(root, link)).catch(() => {});
  }
  const programs = PROGRAMS.filter((program) => !(options.omit ?? []).includes(program));
  for (const program of programs) {
    await place(root, program.replace(/^\/bin\//, '/usr/bin/'));
    for (const library of await librariesOf(program)) await place(root, library.replace(/^\/lib(64)?\//, '/usr/lib$1/'));
  }
  await mkdir(path.join(root, 'etc'), { recursive: true });
  await writeFile(path.join(root, 'etc', 'image-marker'), `${options.marker ?? tag}\n`);
  await writeFile(path.join(root, 'etc', 'os-release'), 'ID=forgelink-test\nPRETTY_NAME="forgelink test image"\n');
  if ((await lstat(path.join(layout, 'index.json')).catch(() => null)) === null) await run('/usr/bin/umoci', ['init', '--layout', layout]);
  await run('/usr/bin/umoci', ['new', '--image', `${layout}:${tag}`]);
  await run('/usr/bin/umoci', ['insert', '--rootless', '--image', `${layout}:${tag}`, root, '/']);
  return `oci:${layout}:${tag}`;
}
