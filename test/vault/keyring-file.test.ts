import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ConflictError, InputError } from '../../src/core/index.ts';
import { addKeyVersion, createVault, loadKeyring } from '../../src/vault/index.ts';

const binding = { ownerId: 'u', recordId: 'c', purpose: 'token' };

function fileMode(path: string): Promise<number> {
  return stat(path).then((info) => info.mode & 0o777);
}

function namesVariable(variable: string) {
  return (error: unknown) => {
    assert.ok(error instanceof InputError, `expected an InputError, got ${String(error)}`);
    assert.equal(error.field, variable);
    assert.match(error.message, new RegExp(variable));
    return true;
  };
}

describe('keyring file', () => {
  let dir: string;
  let dataDir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'forgelink-keyring-'));
    dataDir = join(dir, 'data');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('generates master.key with mode 0600 on first start and says so', async () => {
    const first = await loadKeyring({ dataDir });
    const path = join(dataDir, 'master.key');
    assert.equal(first.created, true);
    assert.deepEqual(first.source, { kind: 'data-dir', path });
    assert.equal(await fileMode(path), 0o600);
    assert.equal(await fileMode(dataDir), 0o700);
    assert.equal(first.notices.length, 1);
    assert.match(first.notices[0] ?? '', /Generated a new master key/);
    assert.ok(first.notices[0]?.includes(path));

    const json = JSON.parse(await readFile(path, 'utf8'));
    assert.equal(json.format, 'forgelink-keyring/1');
    assert.equal(json.versions.length, 1);
    assert.equal(json.versions[0].id, 'k1');
    assert.equal(Buffer.from(json.versions[0].key, 'base64').length, 32);

    const second = await loadKeyring({ dataDir });
    assert.equal(second.created, false);
    assert.deepEqual(second.notices, []);
    assert.deepEqual(second.keyring.versions[0]?.key, first.keyring.versions[0]?.key);
  });

  test('two processes starting at once end up with one key', async () => {
    const results = await Promise.all([loadKeyring({ dataDir }), loadKeyring({ dataDir }), loadKeyring({ dataDir })]);
    assert.equal(results.filter((result) => result.created).length, 1);
    const keys = new Set(results.map((result) => result.keyring.versions[0]?.key.toString('hex')));
    assert.equal(keys.size, 1);
  });

  test('FORGELINK_MASTER_KEY is version k1 and no file is written', async () => {
    const key = randomBytes(32);
    const loaded = await loadKeyring({ dataDir, masterKey: key.toString('base64') });
    assert.deepEqual(loaded.keyring.versions, [{ id: 'k1', key }]);
    assert.equal(loaded.source.kind, 'env');
    await assert.rejects(stat(join(dataDir, 'master.key')), { code: 'ENOENT' });
  });

  test('a key sealed under FORGELINK_MASTER_KEY opens after moving it into a keyring file as k1', async () => {
    const key = randomBytes(32).toString('base64');
    const sealed = createVault({ keyring: (await loadKeyring({ dataDir, masterKey: key })).keyring }).seal('t', binding);
    const file = join(dir, 'keyring.json');
    await writeFile(file, JSON.stringify({ versions: [{ id: 'k1', key }] }), { mode: 0o600 });
    const fromFile = await loadKeyring({ dataDir, masterKeyFile: file });
    assert.equal(createVault({ keyring: fromFile.keyring }).open(sealed, binding), 't');
  });

  for (const [label, value] of [
    ['empty', ''],
    ['not base64', 'this is not a key!'],
    ['16 bytes', randomBytes(16).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['hex', randomBytes(32).toString('hex')],
  ] as const) {
    test(`a bad FORGELINK_MASTER_KEY (${label}) is an error naming the variable`, async () => {
      await assert.rejects(loadKeyring({ dataDir, masterKey: value }), namesVariable('FORGELINK_MASTER_KEY'));
    });
  }

  test('accepts base64url and surrounding whitespace', async () => {
    const key = randomBytes(32);
    const loaded = await loadKeyring({ dataDir, masterKey: ` ${key.toString('base64url')}\n` });
    assert.deepEqual(loaded.keyring.versions[0]?.key, key);
  });

  test('setting both variables is an error', async () => {
    const key = randomBytes(32).toString('base64');
    await assert.rejects(
      loadKeyring({ dataDir, masterKey: key, masterKeyFile: join(dir, 'k') }),
      namesVariable('FORGELINK_MASTER_KEY_FILE'),
    );
  });

  test('FORGELINK_MASTER_KEY_FILE may hold one base64 key', async () => {
    const key = randomBytes(32);
    const file = join(dir, 'key');
    await writeFile(file, `${key.toString('base64')}\n`, { mode: 0o600 });
    const loaded = await loadKeyring({ dataDir, masterKeyFile: file });
    assert.deepEqual(loaded.keyring.versions, [{ id: 'k1', key }]);
    assert.deepEqual(loaded.source, { kind: 'operator-file', path: file });
    assert.deepEqual(loaded.notices, []);
  });

  test('FORGELINK_MASTER_KEY_FILE may hold a JSON keyring; the last version is current', async () => {
    const file = join(dir, 'keyring.json');
    const versions = [
      { id: 'k1', key: randomBytes(32).toString('base64') },
      { id: 'k2', key: randomBytes(32).toString('base64'), createdAt: '2026-01-01T00:00:00.000Z' },
    ];
    await writeFile(file, JSON.stringify({ versions }), { mode: 0o600 });
    const { keyring } = await loadKeyring({ dataDir, masterKeyFile: file });
    assert.deepEqual(keyring.versions.map((version) => version.id), ['k1', 'k2']);
    assert.equal(createVault({ keyring }).currentKeyId(), 'k2');
  });

  for (const [label, text] of [
    ['broken JSON', '{"versions": ['],
    ['no versions', '{"versions": []}'],
    ['short key', JSON.stringify({ versions: [{ id: 'k1', key: randomBytes(8).toString('base64') }] })],
    ['bad key text', 'not-a-key'],
  ] as const) {
    test(`a bad keyring file (${label}) is an error naming the variable`, async () => {
      const file = join(dir, 'keyring');
      await writeFile(file, text, { mode: 0o600 });
      await assert.rejects(loadKeyring({ dataDir, masterKeyFile: file }), (error) => {
        assert.ok(error instanceof InputError);
        assert.match(error.message, /FORGELINK_MASTER_KEY_FILE/);
        return true;
      });
    });
  }

  test('a missing keyring file is an error naming the variable', async () => {
    await assert.rejects(
      loadKeyring({ dataDir, masterKeyFile: join(dir, 'missing') }),
      namesVariable('FORGELINK_MASTER_KEY_FILE'),
    );
  });

  test('warns about a keyring file others can read', async () => {
    const file = join(dir, 'key');
    await writeFile(file, randomBytes(32).toString('base64'));
    await chmod(file, 0o644);
    const loaded = await loadKeyring({ dataDir, masterKeyFile: file });
    assert.match(loaded.notices.join('\n'), /chmod 600/);
  });

  test('warns when a generated master.key is ignored because a key was supplied', async () => {
    await loadKeyring({ dataDir });
    const loaded = await loadKeyring({ dataDir, masterKey: randomBytes(32).toString('base64') });
    assert.match(loaded.notices.join('\n'), /ignored because FORGELINK_MASTER_KEY is set/);
  });

  describe('adding a version (rotate-key)', () => {
    test('appends k2 to the generated file, keeps k1 and mode 0600', async () => {
      const before = await loadKeyring({ dataDir });
      const sealed = createVault({ keyring: before.keyring }).seal('token', binding);

      const added = await addKeyVersion({ dataDir }, { now: new Date('2026-05-01T00:00:00Z') });
      const path = join(dataDir, 'master.key');
      assert.equal(added.added.id, 'k2');
      assert.equal(added.added.createdAt, '2026-05-01T00:00:00.000Z');
      assert.equal(added.path, path);
      assert.equal(await fileMode(path), 0o600);

      const after = await loadKeyring({ dataDir });
      assert.deepEqual(after.keyring.versions.map((version) => version.id), ['k1', 'k2']);
      assert.deepEqual(after.keyring.versions[0]?.key, before.keyring.versions[0]?.key);
      const vault = createVault({ keyring: after.keyring });
      assert.equal(vault.currentKeyId(), 'k2');
      assert.equal(vault.open(sealed, binding), 'token');

      await addKeyVersion({ dataDir });
      assert.deepEqual(
        (await loadKeyring({ dataDir })).keyring.versions.map((version) => version.id),
        ['k1', 'k2', 'k3'],
      );
      await assert.rejects(stat(`${path}.lock`), { code: 'ENOENT' });
    });

    test('creates the key first when the data dir has none', async () => {
      const added = await addKeyVersion({ dataDir });
      assert.equal(added.added.id, 'k2');
      assert.equal(added.keyring.versions.length, 2);
    });

    test('refuses an env-only key and tells the operator what to do', async () => {
      await assert.rejects(addKeyVersion({ dataDir, masterKey: randomBytes(32).toString('base64') }), (error) => {
        assert.ok(error instanceof ConflictError);
        assert.equal(error.code, 'master_key_env_only');
        assert.match(error.message, /FORGELINK_MASTER_KEY_FILE/);
        assert.match(error.message, /"id":"k1"/);
        return true;
      });
    });

    test('turns an operator file holding one base64 key into a JSON keyring', async () => {
      const key = randomBytes(32);
      const file = join(dir, 'key');
      await writeFile(file, key.toString('base64'), { mode: 0o600 });
      const added = await addKeyVersion({ dataDir, masterKeyFile: file });
      assert.match(added.notices.join('\n'), /Rewrote/);
      const { keyring } = await loadKeyring({ dataDir, masterKeyFile: file });
      assert.deepEqual(keyring.versions.map((version) => version.id), ['k1', 'k2']);
      assert.deepEqual(keyring.versions[0]?.key, key);
      assert.equal(await fileMode(file), 0o600);
    });

    test('refuses while another rotation holds the lock', async () => {
      await loadKeyring({ dataDir });
      await writeFile(join(dataDir, 'master.key.lock'), '');
      await assert.rejects(addKeyVersion({ dataDir }), { code: 'keyring_locked' });
      assert.equal((await loadKeyring({ dataDir })).keyring.versions.length, 1);
    });
  });
});
