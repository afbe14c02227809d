/**
 * What the CLI does on this machine rather than through the API: serve, and the admin commands on the data
 * directory. Loaded by `main.ts` only when such a command runs, so the other commands start quickly.
 */
import path from 'node:path';
import { createApiKeyService } from './api-keys/index.ts';
import type { LocalActions } from './cli/index.ts';
import { checkListenAddress, createForgelink, masterKeySettings, openConfiguredStorage, systemClock as clock, type ForgelinkRole } from './compose.ts';
import { readConfig, type Config } from './config/index.ts';
import { buildAgentImage, createImageStore } from './images/index.ts';
import { apiKeyPrefix, generateApiKey, hashApiKey, InputError, newId, userNameProblem } from './core/index.ts';
import { listMirrors, pruneMirrors, repoCacheDir } from './runs/index.ts';
import { hashPassword, passwordProblem } from './server/index.ts';
import type { Storage } from './storage/index.ts';
import { addKeyVersion, createVault, loadKeyringForDatabase, rotateSecrets } from './vault/index.ts';

async function withStorage<T>(config: Config, use: (storage: Storage) => Promise<T>): Promise<T> {
  const storage = await openConfiguredStorage(config, clock);
  try {
    return await use(storage);
  } finally {
    await storage.close();
  }
}

/**
 * Starts a long-running process in its role: `all` (`serve`), `api` (`serve --no-runs`) or `worker`; resolves once it
 * listens. SIGTERM/SIGINT drain it: no new runs, running ones get FORGELINK_WORKER_DRAIN to finish, then stop.
 */
async function startProcess(config: Config, options: { newMasterKey: boolean; role: ForgelinkRole }): Promise<void> {
  // An address it cannot listen on stops the start before anything is made in the data directory (a new master key).
  await checkListenAddress(config.listen);
  const forgelink = await createForgelink(config, { newMasterKey: options.newMasterKey, role: options.role });
  const stop = (signal: string) => {
    forgelink.logger.info({ signal }, 'shutting down');
    void forgelink.stop({ drainMs: config.workers.drainMs }).then(() => process.exit(0));
    setTimeout(() => process.exit(0), config.workers.drainMs + 15_000).unref();
  };
  try {
    await forgelink.start({ listen: true });
  } catch (error) {
    // The error says what went wrong (an address in use, say); whatever stopping reports would hide it.
    await forgelink.stop().catch(() => undefined);
    throw error;
  }
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

async function checkedPasswordHash(password: string): Promise<string> {
  const problem = passwordProblem(password);
  if (problem !== null) throw new InputError('invalid_password', problem, { field: 'password' });
  return hashPassword(password);
}

/** `admin user key`: a new key for the named user, audited as the local administrator's doing. */
async function issueKey(storage: Storage, name: string, keyName: string | undefined) {
  const user = await storage.users.findUserByName(name.trim());
  if (user === null) throw new InputError('user_not_found', `There is no user named ${name.trim()}.`, { field: 'name' });
  const keys = createApiKeyService({ store: storage.apiKeys, audit: storage.audit, clock });
  const created = await keys.create(user.id, keyName ?? `issued ${clock.now().toISOString().slice(0, 19).replace('T', ' ')}`, { actor: 'admin', via: 'admin' });
  return { ...created, user: { id: user.id, name: user.name } };
}

export function localActions(env: NodeJS.ProcessEnv): LocalActions {
  const config = () => readConfig(env);
  return {
    serve: (options) => startProcess(config(), { newMasterKey: options.newMasterKey, role: options.runs ? 'all' : 'api' }),
    worker: () => startProcess(config(), { newMasterKey: false, role: 'worker' }),
    async addUser(name, isAdmin, password) {
      const trimmed = name.trim();
      const nameProblem = userNameProblem(trimmed);
      if (nameProblem !== null) throw new InputError('invalid_name', nameProblem, { field: 'name' });
      const passwordHash = password === undefined ? null : await checkedPasswordHash(password);
      return withStorage(config(), async (storage) => {
        if ((await storage.users.findUserByName(trimmed)) !== null) {
          // A name is letters, digits, dots, dashes and underscores (src/core/users.ts), so the command is safe to paste.
          throw new InputError(
            'user_exists',
            `A user named ${trimmed} already exists. To give ${trimmed} a new API key: forgelink admin user key ${trimmed}`,
            { field: 'name' },
          );
        }
        const apiKey = generateApiKey();
        const user = await storage.users.createUser({
          id: newId('usr'),
          name: trimmed,
          isAdmin,
          apiKeyHash: hashApiKey(apiKey),
          apiKeyPrefix: apiKeyPrefix(apiKey),
          createdAt: clock.now().toISOString(),
        });
        if (passwordHash !== null) await storage.users.setPasswordHash(user.id, passwordHash);
        return { id: user.id, name: user.name, isAdmin: user.isAdmin, apiKey };
      });
    },
    async setPassword(name, password) {
      const passwordHash = await checkedPasswordHash(password);
      return withStorage(config(), async (storage) => {
        const user = await storage.users.findUserByName(name.trim());
        if (user === null) throw new InputError('user_not_found', `There is no user named ${name.trim()}.`, { field: 'name' });
        await storage.users.setPasswordHash(user.id, passwordHash);
        // A new password signs the user out everywhere: whoever knew the old one loses their session too.
        return { name: user.name, sessionsEnded: await storage.sessions.deleteUserSessions(user.id) };
      });
    },
    pullImage: (ref, progress) => createImageStore({ dir: config().imageDir }).pull(ref, progress),
    listImages: () => createImageStore({ dir: config().imageDir }).list(),
    removeImage: (ref) => createImageStore({ dir: config().imageDir }).remove(ref),
    async buildAgentImage(recipe, options, progress) {
      if (recipe !== 'agent') throw new InputError('unknown_recipe', `There is no image recipe "${recipe}"; forgelink has one: agent.`, { field: 'recipe' });
      const { imageDir } = config();
      const built = await buildAgentImage({
        outDir: options.output ?? path.join(imageDir, 'build', 'agent'),
        extraPackages: options.package,
        extraNpm: options.npm,
        ...(options.suite === undefined ? {} : { suite: options.suite }),
        ...(options.mirror === undefined ? {} : { mirror: options.mirror }),
        ...(options.force === true ? { force: true } : {}),
        progress,
      });
      const image = await createImageStore({ dir: imageDir }).pull(built.ref, progress);
      return { ...built, image };
    },
    listUsers: () => withStorage(config(), (storage) => storage.users.listUsers()),
    issueKey: (name, keyName) => withStorage(config(), (storage) => issueKey(storage, name, keyName)),
    async listCache() {
      const { dataDir, runs } = config();
      const dir = repoCacheDir(dataDir);
      const mirrors = await listMirrors(dir);
      const totalBytes = mirrors.reduce((sum, mirror) => sum + mirror.sizeBytes, 0);
      return { enabled: runs.repoCache.enabled, dir, maxBytes: runs.repoCache.maxBytes, totalBytes, mirrors };
    },
    async pruneCache(options) {
      const { dataDir, runs } = config();
      const dir = repoCacheDir(dataDir);
      return { dir, ...(await pruneMirrors(dir, options.all ? 0 : runs.repoCache.maxBytes)) };
    },
    async rotateKey(options) {
      const settings = masterKeySettings(config());
      return withStorage(config(), async (storage) => {
        // Refused, before the keyring is touched, when it cannot open the stored secrets (a lost master.key).
        const loaded = await loadKeyringForDatabase(settings, storage, { newKeyAllowed: false });
        const vault = createVault({ keyring: options.resealOnly ? loaded.keyring : (await addKeyVersion(settings)).keyring });
        return { keyId: vault.currentKeyId(), ...(await rotateSecrets({ vault, store: storage.connections, userSecrets: storage.userSecrets })) };
      });
    },
  };
}
