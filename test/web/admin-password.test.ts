import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyPassword } from '../../src/server/web/passwords.ts';
import { openStorage } from '../../src/storage/index.ts';
import { forgelinkInProcess } from '../support/cli-in-process.ts';
import { forgelinkCli } from '../support/processes.ts';

describe('forgelink admin user add --password-stdin and set-password', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-passwords-'));
    env = { PATH: process.env.PATH, HOME: home, FORGELINK_DATA_DIR: join(home, 'data') };
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  async function storedHash(name: string): Promise<string | null> {
    const storage = await openStorage({ dataDir: join(home, 'data') });
    try {
      return (await storage.users.findPasswordHash(name))?.passwordHash ?? null;
    } finally {
      await storage.close();
    }
  }

  // The first command is a real process (the password from a real pipe, the exit code); the others run in-process.
  test('add sets the password read from stdin (the trailing newline is not part of it)', async () => {
    const result = await forgelinkCli(['admin', 'user', 'add', 'dana', '--password-stdin'], { env, stdin: 'a long passphrase \n' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Created user dana .* with a dashboard password/);
    assert.ok(!result.stdout.includes('a long passphrase'));
    const hash = await storedHash('dana');
    assert.ok(hash !== null);
    assert.equal(await verifyPassword('a long passphrase ', hash), true);
  });

  test('set-password replaces it and ends the user\'s sessions; a short one is refused in one line', async () => {
    const short = await forgelinkInProcess(['admin', 'user', 'set-password', 'dana'], { env, stdin: 'short\n' });
    assert.equal(short.code, 1);
    assert.equal(short.stderr, 'forgelink: A password needs at least 10 characters.\n');
    const storage = await openStorage({ dataDir: join(home, 'data') });
    const user = await storage.users.findUserByName('dana');
    assert.ok(user !== null);
    const now = new Date().toISOString();
    await storage.sessions.createSession({ id: 'h1', userId: user.id, csrfToken: 't', createdAt: now, lastSeenAt: now, expiresAt: '2999-01-01T00:00:00.000Z' });
    await storage.close();

    const result = await forgelinkInProcess(['admin', 'user', 'set-password', 'dana', '--json'], { env, stdin: 'another long one\n' });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { name: 'dana', sessionsEnded: 1 });
    assert.equal(await verifyPassword('another long one', (await storedHash('dana')) as string), true);
  });

  test('set-password for an unknown user fails', async () => {
    const result = await forgelinkInProcess(['admin', 'user', 'set-password', 'nobody'], { env, stdin: 'long enough password\n' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^forgelink: There is no user named nobody\.\n$/);
  });
});
