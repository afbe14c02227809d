import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CliError } from './api-client.ts';

/** Where `forgelink login` keeps the server and API key: the user's config dir, mode 0600. */
export type StoredLogin = { server: string; apiKey: string };

export function loginFile(env: Readonly<Record<string, string | undefined>>): string {
  const base = env.XDG_CONFIG_HOME?.trim() || path.join(env.HOME?.trim() || os.homedir(), '.config');
  return path.join(base, 'forgelink', 'login.json');
}

export async function readLogin(file: string): Promise<StoredLogin | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as Partial<StoredLogin>;
    if (typeof parsed.server === 'string' && typeof parsed.apiKey === 'string') {
      return { server: parsed.server, apiKey: parsed.apiKey };
    }
  } catch {
    // fall through to the error below
  }
  throw new CliError(`${file} is damaged; run "forgelink login" again`);
}

export async function writeLogin(file: string, login: StoredLogin): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, file);
}
