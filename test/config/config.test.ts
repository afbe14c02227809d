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
  assert.deepEqual(config.gitlabOAuthScopes, ['api', 'read_user']);
  assert.equal(config.logFormat, null, 'unset: decided by whether stdout is a terminal');
});

test('FORGELINK_LOG_FORMAT: json or pretty', () => {
  assert.equal(readConfig({ FORGELINK_LOG_FORMAT: 'json' }).logFormat, 'json');
  assert.equal(readConfig({ FORGELINK_LOG_FORMAT: ' pretty ' }).logFormat, 'pretty');
});

test('run caps: 4 GiB of memory and 10 GiB of disk by default; bytes or sizes with 1024-based units', () => {
  const defaults = readConfig({}).runs;
  assert.equal(defaults.memoryMaxBytes, 4 * 1024 ** 3);
  assert.equal(defaults.diskMaxBytes, 10 * 1024 ** 3);
  for (const [raw, bytes] of [
    ['1073741824', 1024 ** 3],
    ['512MB', 512 * 1024 ** 2],
    ['512m', 512 * 1024 ** 2],
    ['2GB', 2 * 1024 ** 3],
    ['1.5 GiB', 1.5 * 1024 ** 3],
    ['1T', 1024 ** 4],
  ] as const) {
    assert.equal(readConfig({ FORGELINK_RUN_MEMORY_MAX: raw }).runs.memoryMaxBytes, bytes, raw);
    assert.equal(readConfig({ FORGELINK_RUN_DISK_MAX: raw }).runs.diskMaxBytes, bytes, raw);
  }
});

test('OAuth applications: base URLs normalised, a CA file read, scopes configurable', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'forgelink-config-'));
  try {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    await writeFile(join(dir, 'ca.pem'), pem);
    const config = readConfig(
      {
        FORGELINK_GITLAB_OAUTH_APPS: JSON.stringify([
          { baseUrl: 'gitlab.example.com/gitlab/api/v4/', clientId: 'id', clientSecret: 'secret', caFile: 'ca.pem' },
        ]),
        FORGELINK_GITLAB_OAUTH_SCOPES: 'api, read_user  read_repository',
      },
      dir,
    );
    assert.deepEqual(config.gitlabOAuthApps, [{ baseUrl: 'https://gitlab.example.com/gitlab', clientId: 'id', clientSecret: 'secret', caPem: pem }]);
    assert.deepEqual(config.gitlabOAuthScopes, ['api', 'read_user', 'read_repository']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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
  assert.deepEqual(config.gitlabOAuthApps, [{ baseUrl: 'https://gitlab.com', clientId: 'abc', clientSecret: null, caPem: null }]);
});

for (const [variable, value] of [
  ['DATABASE_URL', 'mysql://x'],
  ['FORGELINK_OUTBOUND_ALLOW', '10.0.0.0/40'],
  ['FORGELINK_LISTEN', '8080'],
  ['FORGELINK_LISTEN', 'localhost:99999'],
  ['FORGELINK_PUBLIC_URL', 'http://forgelink.example.com'],
  ['FORGELINK_ALLOW_HTTP', 'maybe'],
  ['FORGELINK_LOG_LEVEL', 'loud'],
  ['FORGELINK_LOG_FORMAT', 'text'],
  ['FORGELINK_GITLAB_OAUTH_APPS', '{not json'],
  ['FORGELINK_GITLAB_OAUTH_APPS', '[{"baseUrl":"https://gitlab.com"}]'],
  ['FORGELINK_GITLAB_OAUTH_APPS', '[{"baseUrl":"https://gitlab.com","clientId":"a"},{"baseUrl":"gitlab.com/","clientId":"b"}]'],
  ['FORGELINK_GITLAB_OAUTH_APPS', '[{"baseUrl":"https://gitlab.com","clientId":"a","caFile":"/nonexistent/ca.pem"}]'],
  ['FORGELINK_GITLAB_OAUTH_APPS', '[{"baseUrl":"ftp://gitlab.com","clientId":"a"}]'],
  ['FORGELINK_GITLAB_OAUTH_SCOPES', 'api Read-User'],
  ['FORGELINK_RUN_MEMORY_MAX', 'lots'],
  ['FORGELINK_RUN_MEMORY_MAX', '2 parsecs'],
  ['FORGELINK_RUN_MEMORY_MAX', '1MB'],
  ['FORGELINK_RUN_DISK_MAX', '-5GB'],
  ['FORGELINK_RUN_DISK_MAX', '100'],
] as const) {
  test(`${variable}=${value} is refused with the variable named`, () => {
    assert.throws(
      () => readConfig({ [variable]: value }),
      (error: unknown) => error instanceof ConfigError && error.variable === variable && error.message.startsWith(`${variable}:`),
    );
  });
}


test('health monitor: on every 6 hours with 10% jitter by default; interval, jitter and off configurable', () => {
  assert.deepEqual(readConfig({}).monitor, { enabled: true, intervalMs: 6 * 3600_000, jitterMs: 2160_000 });
  assert.deepEqual(readConfig({ FORGELINK_MONITOR_INTERVAL: '30m', FORGELINK_MONITOR_JITTER: '90s' }).monitor, {
    enabled: true,
    intervalMs: 1800_000,
    jitterMs: 90_000,
  });
  assert.equal(readConfig({ FORGELINK_MONITOR_INTERVAL: '1h', FORGELINK_MONITOR_JITTER: '0' }).monitor.jitterMs, 0);
  assert.equal(readConfig({ FORGELINK_MONITOR: 'off' }).monitor.enabled, false);
  for (const [env, variable] of [
    [{ FORGELINK_MONITOR_INTERVAL: 'soon' }, 'FORGELINK_MONITOR_INTERVAL'],
    [{ FORGELINK_MONITOR_INTERVAL: '1h', FORGELINK_MONITOR_JITTER: '2h' }, 'FORGELINK_MONITOR_JITTER'],
    [{ FORGELINK_MONITOR: 'sometimes' }, 'FORGELINK_MONITOR'],
  ] as const) {
    assert.throws(() => readConfig(env), (error: unknown) => error instanceof ConfigError && error.variable === variable);
  }
});

test('notification webhook: https, or http on loopback; the secret only with a URL; no credentials in the URL', () => {
  assert.equal(readConfig({}).notifyWebhook, null);
  assert.deepEqual(readConfig({ FORGELINK_NOTIFY_WEBHOOK: 'https://hooks.example.com/forgelink', FORGELINK_NOTIFY_WEBHOOK_SECRET: 's3cret' }).notifyWebhook, {
    url: 'https://hooks.example.com/forgelink',
    secret: 's3cret',
  });
  assert.deepEqual(readConfig({ FORGELINK_NOTIFY_WEBHOOK: 'http://127.0.0.1:9000/hook' }).notifyWebhook, { url: 'http://127.0.0.1:9000/hook', secret: null });
  for (const [env, variable] of [
    [{ FORGELINK_NOTIFY_WEBHOOK: 'http://hooks.example.com/forgelink' }, 'FORGELINK_NOTIFY_WEBHOOK'],
    [{ FORGELINK_NOTIFY_WEBHOOK: 'not a url' }, 'FORGELINK_NOTIFY_WEBHOOK'],
    [{ FORGELINK_NOTIFY_WEBHOOK: 'https://user:pw@hooks.example.com/' }, 'FORGELINK_NOTIFY_WEBHOOK'],
    [{ FORGELINK_NOTIFY_WEBHOOK_SECRET: 'orphan' }, 'FORGELINK_NOTIFY_WEBHOOK_SECRET'],
  ] as const) {
    assert.throws(() => readConfig(env), (error: unknown) => error instanceof ConfigError && error.variable === variable);
  }
});

test('FORGELINK_POLICY: off unless the operator turns an option on; wrong values name the variable', () => {
  assert.deepEqual(readConfig({}).policy, { allowTags: false, allowMerge: false, readOtherProjects: false });
  assert.deepEqual(readConfig({ FORGELINK_POLICY: '{"allowTags":true}' }).policy, { allowTags: true, allowMerge: false, readOtherProjects: false });
  assert.deepEqual(readConfig({ FORGELINK_POLICY: ' {"allowMerge":true,"readOtherProjects":true} ' }).policy, { allowTags: false, allowMerge: true, readOtherProjects: true });
  for (const [raw, message] of [
    ['{', /FORGELINK_POLICY: is not valid JSON/],
    ['{"allowTags":"yes"}', /FORGELINK_POLICY: .*allowTags/],
    ['{"allowTag":true}', /FORGELINK_POLICY: .*allowTag/],
    ['[]', /FORGELINK_POLICY: expected/],
  ] as const) {
    assert.throws(() => readConfig({ FORGELINK_POLICY: raw }), (error: unknown) => error instanceof ConfigError && error.variable === 'FORGELINK_POLICY' && message.test(error.message), raw);
  }
});
