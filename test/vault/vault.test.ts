import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { VaultError } from '../../src/core/index.ts';
import { createVault } from '../../src/vault/index.ts';
import type { KeyVersion } from '../../src/vault/index.ts';

const k1: KeyVersion = { id: 'k1', key: randomBytes(32) };
const k2: KeyVersion = { id: 'k2', key: randomBytes(32) };
const binding = { ownerId: 'user-1', recordId: 'conn-1', purpose: 'token' };
const plaintext = 'glpat-abcdefghijklmnopqrst';

function isVaultError(code?: string) {
  return (error: unknown) => {
    assert.ok(error instanceof VaultError, `expected a VaultError, got ${String(error)}`);
    if (code !== undefined) assert.equal(error.code, code);
    return true;
  };
}

describe('vault', () => {
  test('opens what it sealed', () => {
    const vault = createVault({ keyring: { versions: [k1] } });
    assert.equal(vault.open(vault.seal(plaintext, binding), binding), plaintext);
    assert.equal(vault.open(vault.seal('', binding), binding), '');
    assert.equal(vault.open(vault.seal('ünïcødé ✓', binding), binding), 'ünïcødé ✓');
  });

  test('writes fl1.<keyId>.<nonce>.<ciphertext+tag> without the plaintext', () => {
    const vault = createVault({ keyring: { versions: [k1] } });
    const sealed = vault.seal(plaintext, binding);
    assert.match(sealed, /^fl1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    assert.ok(!sealed.includes(plaintext));
    assert.ok(!sealed.includes(Buffer.from(plaintext).toString('base64url')));
    assert.equal(vault.keyIdOf(sealed), 'k1');
  });

  test('uses a fresh nonce for every seal', () => {
    const vault = createVault({ keyring: { versions: [k1] } });
    const nonces = new Set<string>();
    const sealedValues = new Set<string>();
    for (let index = 0; index < 200; index += 1) {
      const sealed = vault.seal(plaintext, binding);
      sealedValues.add(sealed);
      nonces.add(sealed.split('.')[2] ?? '');
    }
    assert.equal(nonces.size, 200);
    assert.equal(sealedValues.size, 200);
  });

  test('any changed character fails with a VaultError', () => {
    const vault = createVault({ keyring: { versions: [k1] } });
    const sealed = vault.seal(plaintext, binding);
    const prefix = 'fl1.k1.'.length;
    for (let index = prefix; index < sealed.length; index += 1) {
      const original = sealed[index];
      if (original === '.') continue;
      for (const replacement of ['A', 'B', '-', '_']) {
        if (replacement === original) continue;
        const tampered = sealed.slice(0, index) + replacement + sealed.slice(index + 1);
        assert.throws(() => vault.open(tampered, binding), isVaultError(), `position ${index} → ${replacement}`);
      }
    }
  });

  test('any flipped bit of nonce, ciphertext or tag fails with a VaultError', () => {
    const vault = createVault({ keyring: { versions: [k1] } });
    const sealed = vault.seal(plaintext, binding);
    const [format, keyId, nonceText, bodyText] = sealed.split('.') as [string, string, string, string];
    const parts = { nonce: Buffer.from(nonceText, 'base64url'), body: Buffer.from(bodyText, 'base64url') };
    for (const part of ['nonce', 'body'] as const) {
      for (let byte = 0; byte < parts[part].length; byte += 1) {
        const copy = Buffer.from(parts[part]);
        copy[byte] = (copy[byte] ?? 0) ^ 0x01;
        const nonce = part === 'nonce' ? copy : parts.nonce;
        const body = part === 'body' ? copy : parts.body;
        const tampered = [format, keyId, nonce.toString('base64url'), body.toString('base64url')].join('.');
        assert.throws(() => vault.open(tampered, binding), isVaultError('vault_open_failed'));
      }
    }
  });

  test('truncated, extended or malformed values fail with a VaultError', () => {
    const vault = createVault({ keyring: { versions: [k1] } });
    const sealed = vault.seal(plaintext, binding);
    for (const bad of [
      '',
      'garbage',
      sealed.slice(0, -1),
      `${sealed}A`,
      `${sealed}.x`,
      sealed.replace(/^fl1/, 'fl2'),
      sealed.replace('.k1.', '..'),
      `fl1.k1.${'A'.repeat(16)}.AAAA`,
    ]) {
      assert.throws(() => vault.open(bad, binding), isVaultError(), JSON.stringify(bad));
    }
    assert.throws(() => vault.keyIdOf('garbage'), isVaultError('vault_malformed'));
  });

  for (const field of ['ownerId', 'recordId', 'purpose'] as const) {
    test(`a value moved to another ${field} fails with a VaultError`, () => {
      const vault = createVault({ keyring: { versions: [k1] } });
      const sealed = vault.seal(plaintext, binding);
      assert.throws(() => vault.open(sealed, { ...binding, [field]: `${binding[field]}x` }), isVaultError('vault_open_failed'));
    });
  }

  test('the binding encoding cannot be confused by separators inside ids', () => {
    const vault = createVault({ keyring: { versions: [k1] } });
    const sealed = vault.seal(plaintext, { ownerId: 'a', recordId: 'b.c', purpose: 'd' });
    assert.throws(() => vault.open(sealed, { ownerId: 'a.b', recordId: 'c', purpose: 'd' }), isVaultError());
    assert.throws(() => vault.open(sealed, { ownerId: 'a', recordId: 'b', purpose: 'c.d' }), isVaultError());
  });

  test('an empty binding field is refused', () => {
    const vault = createVault({ keyring: { versions: [k1] } });
    assert.throws(() => vault.seal(plaintext, { ...binding, ownerId: '' }), isVaultError('vault_bad_binding'));
  });

  test('an unknown key id fails with a VaultError', () => {
    const sealed = createVault({ keyring: { versions: [k1, k2] } }).seal(plaintext, binding);
    const onlyK1 = createVault({ keyring: { versions: [k1] } });
    assert.throws(() => onlyK1.open(sealed, binding), isVaultError('vault_unknown_key'));
  });

  test('a different key under the same id fails with a VaultError', () => {
    const sealed = createVault({ keyring: { versions: [k1] } }).seal(plaintext, binding);
    const impostor = createVault({ keyring: { versions: [{ id: 'k1', key: randomBytes(32) }] } });
    assert.throws(() => impostor.open(sealed, binding), isVaultError('vault_open_failed'));
  });

  test('relabelling the key id in the header fails even when both keys are known', () => {
    const vault = createVault({ keyring: { versions: [k1, { id: 'k2', key: k1.key }] } });
    const sealed = vault.seal(plaintext, binding);
    assert.equal(vault.keyIdOf(sealed), 'k2');
    assert.throws(() => vault.open(sealed.replace('.k2.', '.k1.'), binding), isVaultError('vault_open_failed'));
  });

  test('seals with the newest version and opens every older one', () => {
    const old = createVault({ keyring: { versions: [k1] } });
    const sealedUnderK1 = old.seal(plaintext, binding);
    const rotated = createVault({ keyring: { versions: [k1, k2] } });
    assert.equal(rotated.currentKeyId(), 'k2');
    assert.equal(rotated.open(sealedUnderK1, binding), plaintext);
    const sealedUnderK2 = rotated.seal(plaintext, binding);
    assert.equal(rotated.keyIdOf(sealedUnderK2), 'k2');
    assert.throws(() => old.open(sealedUnderK2, binding), isVaultError('vault_unknown_key'));
  });

  test('refuses a keyring that is empty, has duplicate ids or short keys', () => {
    assert.throws(() => createVault({ keyring: { versions: [] } }), { code: 'keyring_empty' });
    assert.throws(() => createVault({ keyring: { versions: [k1, { id: 'k1', key: k2.key }] } }), {
      code: 'keyring_duplicate_id',
    });
    assert.throws(() => createVault({ keyring: { versions: [{ id: 'k1', key: randomBytes(16) }] } }), {
      code: 'keyring_bad_key',
    });
    assert.throws(() => createVault({ keyring: { versions: [{ id: 'k.1', key: k1.key }] } }), {
      code: 'keyring_bad_id',
    });
  });
});
