import { chmod, copyFile, cp, link, mkdir, readFile, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root directory. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const IMPORT = /(?:^|[\s;}])(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/**
 * Copies `entry` (a file of the checkout) and every module it imports — relative imports, and packages from
 * node_modules with their dependencies — to the same relative paths under `destination`, with a package.json that
 * makes the `.ts` files ES modules; resolves to the copy of `entry`. For code another user must run: the checkout
 * may sit where only root can enter (under /root, or in a 0700 temporary directory).
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
  for (const file of files) {
    const target = path.join(destination, path.relative(ROOT, file));
    await mkdir(path.dirname(target), { recursive: true });
    await copyFile(file, target);
  }
  for (const name of packages) {
    await cp(path.join(ROOT, 'node_modules', name), path.join(destination, 'node_modules', name), { recursive: true, dereference: true });
  }
  await writeFile(path.join(destination, 'package.json'), '{ "type": "module" }\n');
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
