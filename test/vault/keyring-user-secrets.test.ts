import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { VaultError } from '../../src/core/index.ts';
import type { Storage } from '../../src/storage/index.ts';
import { bindingForUserSecret, createVault, loadKeyringForDatabase } from '../../src/vault/index.ts';
import { databases } from '../support/databases.ts';
import { newUser } from '../support/records.ts';

describe("the master-key check at start counts users' secrets", () => {
  let storage: Storage;
  let dataDir: string;
  const key = randomBytes(32);

  before(async () => {
    storage = await databases()[0]!.open();
    dataDir = await mkdtemp(path.join(tmpdir(), 'forgelink-keyring-'));
    // A database whose only sealed value is a user's secret: no connection at all.
    const vault = createVault({ keyring: { versions: [{ id: 'k1', key }] } });
    const user = await storage.users.createUser(newUser());
    await storage.userSecrets.putSecret({
      userId: user.id,
      name: 'ANTHROPIC_API_KEY',
      hosts: null,
      seal: (id) => vault.seal('sk-ant-the-value', bindingForUserSecret({ userId: user.id, id, name: 'ANTHROPIC_API_KEY' })),
      newId: () => 'sct_1',
      now: new Date().toISOString(),
    });
  });
  after(async () => {
    await storage.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('without the master key, forgelink does not start (and generates no key)', async () => {
    await assert.rejects(
      loadKeyringForDatabase({ dataDir }, storage, { newKeyAllowed: false }),
      (error) => error instanceof VaultError && error.code === 'vault_master_key_missing' && /1 secret sealed with master key k1/.test(error.message),
    );
  });

  test('with another key of the same id, it does not start either', async () => {
    await assert.rejects(
      loadKeyringForDatabase({ dataDir, masterKey: randomBytes(32).toString('base64') }, storage, { newKeyAllowed: false }),
      (error) => error instanceof VaultError && error.code === 'vault_master_key_mismatch',
    );
  });

  test('with the right key, it starts', async () => {
    const loaded = await loadKeyringForDatabase({ dataDir, masterKey: key.toString('base64') }, storage, { newKeyAllowed: false });
    assert.equal(loaded.keyring.versions[0]?.id, 'k1');
  });
});
