import { chmod, copyFile, cp, link, readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root directory. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const IMPORT = /(?:^|[\s;}])(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/**
 * Copies what running `entry` (a file of the checkout) needs to the same relative paths under `destination`: the whole
 * top-level folder it lives in (e.g. `src/`, with the non-code files its modules read beside them), package.json,
 * and the packages from node_modules its imports reach, with their dependencies; resolves to the copy of `entry`.
 * For code another user must run: the checkout may sit where only root can enter (under /root, or in a 0700
 * temporary directory).
 */
export async function copyModuleClosure(entry: string, destination: string): Promise<string> {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [path.resolve(entry)];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (files.has(file)) continue;
    files.add(file);
    const text = await readFile(file, 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      const specifier = (match[1] ?? match[2]) as string;
      if (specifier.startsWith('.')) pending.push(path.resolve(path.dirname(file), specifier));
      else if (!isBuiltin(specifier)) await addPackage(packageName(specifier), packages);
    }
  }
  const folder = path.relative(ROOT, path.resolve(entry)).split(path.sep)[0] as string;
  await cp(path.join(ROOT, folder), path.join(destination, folder), { recursive: true });
  await copyFile(path.join(ROOT, 'package.json'), path.join(destination, 'package.json'));
  for (const name of packages) {
    await cp(path.join(ROOT, 'node_modules', name), path.join(destination, 'node_modules', name), { recursive: true, dereference: true });
  }
  return path.join(destination, path.relative(ROOT, entry));
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

async function addPackage(name: string, packages: Set<string>): Promise<void> {
  if (packages.has(name)) return;
  packages.add(name);
  const manifest = JSON.parse(await readFile(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  for (const dependency of Object.keys(manifest.dependencies ?? {})) await addPackage(dependency, packages);
}

/** A copy (or, on the same file system, a hard link) of the running Node binary at `target`. */
export async function copyNode(target: string): Promise<string> {
  await link(process.execPath, target).catch(() => copyFile(process.execPath, target));
  await chmod(target, 0o755);
  return target;
}
