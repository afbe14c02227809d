import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, readConfig } from '../../src/config/index.ts';

const key = Buffer.alloc(32, 7).toString('base64');

test('defaults', () => {
  const config = readConfig({}, '/srv/forgelink');
  assert.equal(config.dataDir, '/srv/forgelink/data');
  assert.equal(config.databaseUrl, null);
  assert.deepEqual(config.masterKey, { masterKey: undefined, masterKeyFile: undefined });
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8080 });
  assert.equal(config.publicUrl, 'http://127.0.0.1:8080');
  assert.deepEqual(config.outboundAllow, []);
  assert.equal(config.allowHttp, false);
});

test('reads every variable', () => {
  const config = readConfig(
    {
      FORGELINK_DATA_DIR: 'state',
      DATABASE_URL: 'postgres://forgelink@db/forgelink',
      FORGELINK_MASTER_KEY: key,
      FORGELINK_OUTBOUND_ALLOW: ' 10.0.0.0/8, gitlab.internal ,',
      FORGELINK_LISTEN: '[::1]:9000',
      FORGELINK_PUBLIC_URL: 'https://forgelink.example.com/',
      FORGELINK_ALLOW_HTTP: 'true',
      FORGELINK_GITLAB_OAUTH_APPS: '[{"baseUrl":"https://gitlab.com","clientId":"abc"}]',
    },
    '/srv',
  );
  assert.equal(config.dataDir, '/srv/state');
  assert.equal(config.databaseUrl, 'postgres://forgelink@db/forgelink');
  assert.deepEqual(config.masterKey, { masterKey: key, masterKeyFile: undefined });
  assert.deepEqual(config.outboundAllow, ['10.0.0.0/8', 'gitlab.internal']);
  assert.deepEqual(config.listen, { host: '::1', port: 9000 });
  assert.equal(config.publicUrl, 'https://forgelink.example.com');
  assert.equal(config.allowHttp, true);
  assert.deepEqual(config.gitlabOAuthApps, [{ baseUrl: 'https://gitlab.com', clientId: 'abc', clientSecret: null }]);
});

for (const [variable, value] of [
  ['DATABASE_URL', 'mysql://x'],
  ['FORGELINK_OUTBOUND_ALLOW', '10.0.0.0/40'],
  ['FORGELINK_LISTEN', '8080'],
  ['FORGELINK_LISTEN', 'localhost:99999'],
  ['FORGELINK_PUBLIC_URL', 'http://forgelink.example.com'],
  ['FORGELINK_ALLOW_HTTP', 'maybe'],
  ['FORGELINK_LOG_LEVEL', 'loud'],
  ['FORGELINK_GITLAB_OAUTH_APPS', '{not json'],
  ['FORGELINK_GITLAB_OAUTH_APPS', '[{"baseUrl":"https://gitlab.com"}]'],
] as const) {
  test(`${variable}=${value} is refused with the variable named`, () => {
    assert.throws(
      () => readConfig({ [variable]: value }),
      (error: unknown) => error instanceof ConfigError && error.variable === variable && error.message.startsWith(`${variable}:`),
    );
  });
}

