import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, realpath, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, InputError } from '../core/index.ts';
import { isCode, writeFileAtomic } from './atomic-file.ts';
import { decodeKey, KEY_BYTES, nextKeyId, validateKeyring } from './keyring.ts';
import type { KeyVersion, Keyring } from './keyring.ts';
import { KeyringFile } from './schema.ts';

export const MASTER_KEY_VAR = 'FORGELINK_MASTER_KEY';
export const MASTER_KEY_FILE_VAR = 'FORGELINK_MASTER_KEY_FILE';
export const MASTER_KEY_FILENAME = 'master.key';

/** What config read from the environment; `undefined` means the variable was not set. */
export type MasterKeySettings = {
  dataDir: string;
  masterKey?: string | undefined;
  masterKeyFile?: string | undefined;
};

/** Where a keyring came from. Only a file can take a new version. */
export type KeyringSource =
  | { kind: 'env'; variable: typeof MASTER_KEY_VAR }
  | { kind: 'operator-file'; path: string }
  | { kind: 'data-dir'; path: string };

export type LoadedKeyring = {
  keyring: Keyring;
  source: KeyringSource;
  /** True when this call generated the data dir's key file. */
  created: boolean;
  /** Sentences for the operator: a generated key, an ignored file, loose permissions. */
  notices: string[];
};

/**
 * Loads the keyring: `FORGELINK_MASTER_KEY` (one key, id `k1`), else `FORGELINK_MASTER_KEY_FILE` (a JSON
 * keyring or one base64 key), else `<dataDir>/master.key`, generated with mode 0600 when missing (its one
 * version has id `newKeyId`, `k1` unless given). Before a database's secrets are used, load it through
 * `loadKeyringForDatabase`, which refuses to generate a key next to secrets sealed with a lost one.
 */
export async function loadKeyring(
  settings: MasterKeySettings,
  options: { now?: Date; newKeyId?: string; lostKeyIds?: readonly string[] } = {},
): Promise<LoadedKeyring> {
  if (settings.masterKey !== undefined && settings.masterKeyFile !== undefined) {
    throw new InputError(
      'master_key_ambiguous',
      `Set only one of ${MASTER_KEY_VAR} and ${MASTER_KEY_FILE_VAR}.`,
      { field: MASTER_KEY_FILE_VAR },
    );
  }
  const dataDirFile = join(settings.dataDir, MASTER_KEY_FILENAME);
  if (settings.masterKey !== undefined) {
    const key = decodeKey(settings.masterKey, MASTER_KEY_VAR);
    return {
      keyring: { versions: [{ id: 'k1', key }] },
      source: { kind: 'env', variable: MASTER_KEY_VAR },
      created: false,
      notices: await ignoredFileNotice(dataDirFile, MASTER_KEY_VAR),
    };
  }
  if (settings.masterKeyFile !== undefined) {
    const path = settings.masterKeyFile;
    const text = await readKeyFile(path, MASTER_KEY_FILE_VAR);
    return {
      keyring: parseKeyringText(text, `${MASTER_KEY_FILE_VAR} (${path})`),
      source: { kind: 'operator-file', path },
      created: false,
      notices: [...(await permissionNotice(path)), ...(await ignoredFileNotice(dataDirFile, MASTER_KEY_FILE_VAR))],
    };
  }

  await mkdir(settings.dataDir, { recursive: true, mode: 0o700 });
  const existing = await readOptional(dataDirFile);
  if (existing !== null) {
    return {
      keyring: parseKeyringText(existing, dataDirFile),
      source: { kind: 'data-dir', path: dataDirFile },
      created: false,
      notices: await permissionNotice(dataDirFile),
    };
  }
  const generated: Keyring = {
    versions: [newVersion(options.newKeyId ?? 'k1', options.now ?? new Date())],
    ...(options.lostKeyIds === undefined || options.lostKeyIds.length === 0 ? {} : { lost: options.lostKeyIds }),
  };
  // link() refuses to replace, so when two processes start at once exactly one key wins and both use it.
  const created = await writeFileAtomic(dataDirFile, serialiseKeyring(generated), { replace: false });
  if (!created) {
    const winner = await readKeyFile(dataDirFile, dataDirFile);
    return {
      keyring: parseKeyringText(winner, dataDirFile),
      source: { kind: 'data-dir', path: dataDirFile },
      created: false,
      notices: [],
    };
  }
  return {
    keyring: generated,
    source: { kind: 'data-dir', path: dataDirFile },
    created: true,
    notices: [
      `Generated a new master key in ${dataDirFile} (mode 0600). Back it up together with the database: ` +
        `without it the stored GitLab tokens cannot be decrypted. To supply your own key instead, set ` +
        `${MASTER_KEY_VAR} or ${MASTER_KEY_FILE_VAR}.`,
    ],
  };
}

export type AddedKeyVersion = { keyring: Keyring; added: KeyVersion; path: string; notices: string[] };

/**
 * The first step of `admin rotate-key`: appends a new, current key version to the keyring file, keeping
 * every old one so existing ciphertexts stay readable until they are re-sealed. A file holding a single
 * base64 key is rewritten as a JSON keyring whose `k1` is that key.
 */
export async function addKeyVersion(settings: MasterKeySettings, options: { now?: Date } = {}): Promise<AddedKeyVersion> {
  const loaded = await loadKeyring(settings, options);
  if (loaded.source.kind === 'env') {
    throw new ConflictError(
      'master_key_env_only',
      `${MASTER_KEY_VAR} holds a single key, so rotate-key has nowhere to keep a new version next to it. ` +
        `Write a keyring file (mode 0600) containing {"versions":[{"id":"k1","key":"<the current ${MASTER_KEY_VAR} value>"}]}, ` +
        `set ${MASTER_KEY_FILE_VAR} to its path, unset ${MASTER_KEY_VAR}, and run rotate-key again.`,
      { field: MASTER_KEY_VAR },
    );
  }
  const path = loaded.source.path;
  const notices = [...loaded.notices];
  const lock = await acquireLock(path, nextKeyId(loaded.keyring));
  try {
    // Re-read under the lock: the file may have changed since loadKeyring read it.
    const text = await readKeyFile(path, path);
    const keyring = parseKeyringText(text, path);
    const added = newVersion(nextKeyId(keyring), options.now ?? new Date());
    const updated: Keyring = { ...keyring, versions: [...keyring.versions, added] };
    try {
      // Replace the file a symlink points to, not the symlink itself.
      await writeFileAtomic(await realpath(path), serialiseKeyring(updated), { replace: true });
    } catch (cause) {
      if (isCode(cause, 'EACCES', 'EPERM', 'EROFS')) throw readOnlyError(path, added.id, cause);
      throw cause;
    }
    if (!text.trimStart().startsWith('{')) {
      notices.push(`Rewrote ${path} as a JSON keyring; its former key is version k1.`);
    }
    return { keyring: updated, added, path, notices };
  } finally {
    await lock.release();
  }
}

function readOnlyError(path: string, nextId: string, cause: unknown): ConflictError {
  return new ConflictError(
    'keyring_read_only',
    `The keyring file ${path} cannot be written here. Add a version to it yourself ` +
      `(append {"id":"${nextId}","key":"<output of openssl rand -base64 32>"} to "versions"), restart ` +
      `forgelink, then run \`forgelink admin rotate-key --reseal-only\`.`,
    { cause },
  );
}

/** Reads a keyring from file text: the JSON keyring format, or a single base64 key (version `k1`). */
export function parseKeyringText(text: string, source: string): Keyring {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return { versions: [{ id: 'k1', key: decodeKey(trimmed, source) }] };
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    throw new InputError('keyring_malformed', `${source} is neither a JSON keyring nor a base64 key.`, {
      field: source,
    });
  }
  const parsed = KeyringFile.safeParse(json);
  if (!parsed.success) {
    throw new InputError(
      'keyring_malformed',
      `${source} must look like {"versions":[{"id":"k1","key":"<base64 of ${KEY_BYTES} bytes>"}]}.`,
      { field: source },
    );
  }
  return validateKeyring(
    {
      versions: parsed.data.versions.map((version) => ({
        id: version.id,
        key: decodeKey(version.key, `${source}, key "${version.id}"`),
        ...(version.createdAt === undefined ? {} : { createdAt: version.createdAt }),
      })),
      ...(parsed.data.lost === undefined ? {} : { lost: parsed.data.lost }),
    },
    source,
  );
}

/** The JSON keyring format, oldest version first. */
export function serialiseKeyring(keyring: Keyring): string {
  const file: KeyringFile = {
    format: 'forgelink-keyring/1',
    versions: keyring.versions.map((version) => ({
      id: version.id,
      key: version.key.toString('base64'),
      ...(version.createdAt === undefined ? {} : { createdAt: version.createdAt }),
    })),
    ...(keyring.lost === undefined || keyring.lost.length === 0 ? {} : { lost: [...keyring.lost] }),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

function newVersion(id: string, now: Date): KeyVersion {
  return { id, key: randomBytes(KEY_BYTES), createdAt: now.toISOString() };
}

async function readKeyFile(path: string, source: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new InputError('master_key_file_unreadable', `${source}: cannot read ${path}.`, { field: source, cause });
  }
}

/** True when `loadKeyring` would generate `<dataDir>/master.key`: no key is given and that file does not exist. */
export async function keyWouldBeGenerated(settings: MasterKeySettings): Promise<boolean> {
  if (settings.masterKey !== undefined || settings.masterKeyFile !== undefined) return false;
  return (await readOptional(join(settings.dataDir, MASTER_KEY_FILENAME))) === null;
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (isCode(error, 'ENOENT')) return null;
    throw error;
  }
}

async function permissionNotice(path: string): Promise<string[]> {
  const { mode } = await stat(path);
  if ((mode & 0o077) === 0) return [];
  return [`${path} can be read by other users (mode ${(mode & 0o777).toString(8)}); run \`chmod 600 ${path}\`.`];
}

async function ignoredFileNotice(dataDirFile: string, variable: string): Promise<string[]> {
  if ((await readOptional(dataDirFile)) === null) return [];
  return [
    `${dataDirFile} exists but is ignored because ${variable} is set; secrets sealed with it will not open.`,
  ];
}

/**
 * Two rotations at once would each append a version and the second rename would drop the first one's,
 * leaving secrets sealed under a key nobody kept. An exclusive lock file next to the keyring prevents that.
 */
async function acquireLock(path: string, nextId: string): Promise<{ release(): Promise<void> }> {
  const lockPath = `${path}.lock`;
  try {
    const handle = await open(lockPath, 'wx', 0o600);
    await handle.close();
  } catch (cause) {
    if (isCode(cause, 'EACCES', 'EPERM', 'EROFS')) throw readOnlyError(path, nextId, cause);
    if (!isCode(cause, 'EEXIST')) throw cause;
    throw new ConflictError(
      'keyring_locked',
      `Another key rotation holds ${lockPath}. If none is running, remove that file and try again.`,
      { cause },
    );
  }
  return { release: () => rm(lockPath, { force: true }) };
}
