import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { diagnose, type DoctorReport, type DoctorStep } from '../../src/doctor/index.ts';
import type { Connection } from '../../src/core/index.ts';
import { gitlabClientFactory } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startReverseProxy } from '../support/reverse-proxy.ts';

const policy = { allow: ['127.0.0.0/8'] };
const deps = { policy, gitlab: gitlabClientFactory(policy, { maxRetries: 0 }), clock: { now: () => new Date() }, runExtraHosts: [], timeoutMs: 3_000 };

function connection(baseUrl: string, overrides: Partial<Connection> = {}): Connection {
  return {
    id: `con_${randomBytes(4).toString('hex')}`,
    userId: 'usr_test',
    provider: 'gitlab',
    kind: 'pat',
    baseUrl,
    host: new URL(baseUrl).host,
    label: 'doctor',
    account: null,
    scopes: ['api'],
    expiresAt: '2027-01-01',
    status: 'active',
    statusReason: null,
    caPem: null,
    instanceVersion: null,
    checkedAt: new Date().toISOString(),
    createdAt: new Date().toISOString(),
    ...overrides,
  } as Connection;
}

function step(report: DoctorReport, id: DoctorStep['id']): DoctorStep {
  const found = report.steps.find((candidate) => candidate.id === id);
  assert.ok(found, `no step ${id}`);
  return found;
}

function statuses(report: DoctorReport): Record<string, string> {
  return Object.fromEntries(report.steps.map((s) => [s.id, s.status]));
}

describe('connections doctor: every step passes for a healthy instance and fails on its own', () => {
  let tlsGitlab: FakeGitLab;
  let plainGitlab: FakeGitLab;
  let tlsToken: string;
  let plainToken: string;

  before(async () => {
    tlsGitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    const bot = tlsGitlab.addUser({ username: 'bot' }).id;
    tlsGitlab.addProject({ path: 'acme/platform/api', members: [{ userId: bot, accessLevel: 30 }] });
    tlsToken = tlsGitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-01-01' });
    plainGitlab = await startFakeGitLab({ basePath: '/gitlab' });
    const other = plainGitlab.addUser({ username: 'bot' }).id;
    plainGitlab.addProject({ path: 'acme/web', members: [{ userId: other, accessLevel: 30 }] });
    plainToken = plainGitlab.addToken(other, { scopes: ['api'], expiresAt: '2027-01-01' });
  });
  after(async () => {
    await tlsGitlab.close();
    await plainGitlab.close();
  });

  test('healthy self-hosted instance under a subpath with a private CA', async () => {
    const report = await diagnose(deps, connection(tlsGitlab.baseUrl, { caPem: tlsGitlab.caPem }), tlsToken);
    assert.equal(report.ok, true, JSON.stringify(report.steps, null, 2));
    assert.deepEqual(statuses(report), {
      dns: 'pass', address: 'pass', tcp: 'pass', tls: 'pass', gitlab: 'pass', subpath: 'pass', token: 'pass',
      encoded_path: 'pass', clone_url: 'pass', egress: 'pass', clock: 'pass',
    });
    assert.match(step(report, 'gitlab').message, /GitLab 18\.1\.1-ee answers/);
    assert.match(step(report, 'subpath').message, /served under \/gitlab/);
    assert.match(step(report, 'tls').message, /trusted through the connection's CA/);
  });

  test('dns: a name that does not resolve', async () => {
    const report = await diagnose(deps, connection('https://gitlab.doctor-test.invalid'), 'glpat-xxxxxxxxxxxxxxxxxxxx');
    assert.equal(step(report, 'dns').status, 'fail');
    assert.match(step(report, 'dns').message, /does not resolve/);
    assert.equal(step(report, 'clock').status, 'skip');
    assert.equal(report.ok, false);
  });

  test('address: the metadata address is refused', async () => {
    const report = await diagnose(deps, connection('http://169.254.169.254'), 'glpat-xxxxxxxxxxxxxxxxxxxx');
    assert.equal(step(report, 'address').status, 'fail');
    assert.match(step(report, 'address').message, /cloud metadata/);
  });

  test('address: loopback without the operator exception', async () => {
    const report = await diagnose({ ...deps, policy: { allow: [] } }, connection(plainGitlab.baseUrl), plainToken);
    assert.equal(step(report, 'address').status, 'fail');
    assert.match(step(report, 'address').message, /FORGELINK_OUTBOUND_ALLOW/);
  });

  test('tcp: nothing listens', async () => {
    const report = await diagnose(deps, connection('http://127.0.0.1:1/gitlab'), plainToken);
    assert.equal(step(report, 'tcp').status, 'fail');
    assert.match(step(report, 'tcp').message, /Nothing answers on 127\.0\.0\.1 port 1/);
  });

  test('tls: an untrusted chain names the authority whose certificate would fix it', async () => {
    const report = await diagnose(deps, connection(tlsGitlab.baseUrl), tlsToken);
    const tls = step(report, 'tls');
    assert.equal(tls.status, 'fail');
    assert.match(tls.message, /--ca-file/);
    const issuer = /issued by "([^"]+)"/.exec(tls.message)?.[1];
    assert.ok(issuer, tls.message);
    assert.ok((tlsGitlab.caPem ?? '').length > 0);
  });

  test('tls: https to a port that speaks plain http says so, not "give a CA"', async () => {
    const report = await diagnose(deps, connection(plainGitlab.baseUrl.replace('http://', 'https://')), plainToken);
    const tls = step(report, 'tls');
    assert.equal(tls.status, 'fail');
    assert.match(tls.message, /does not answer TLS/);
    assert.doesNotMatch(tls.message, /--ca-file/);
  });

  test('gitlab + subpath: the base URL misses the subpath GitLab is served under', async () => {
    const root = new URL(plainGitlab.baseUrl).origin;
    const report = await diagnose(deps, connection(root), plainToken);
    assert.equal(step(report, 'gitlab').status, 'fail');
    assert.equal(step(report, 'subpath').status, 'fail');
    assert.match(step(report, 'subpath').message, new RegExp(`GitLab answers at ${root}/gitlab`));
  });

  test('gitlab: something that is not GitLab', async () => {
    const report = await diagnose(deps, connection(`${new URL(plainGitlab.baseUrl).origin}/elsewhere`), plainToken);
    assert.equal(step(report, 'gitlab').status, 'fail');
    assert.match(step(report, 'subpath').message, /answers neither/);
  });

  test('token: revoked', async () => {
    const bot = plainGitlab.addUser({ username: 'revoked-bot' }).id;
    const token = plainGitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-01-01' });
    plainGitlab.revokeToken(token);
    const report = await diagnose(deps, connection(plainGitlab.baseUrl), token);
    assert.equal(step(report, 'token').status, 'fail');
    assert.match(step(report, 'token').message, /revoked/);
  });

  test('encoded_path: a reverse proxy that decodes %2F is a warning with the fix', async () => {
    const decoding = await startFakeGitLab({ basePath: '/gitlab', decodeEncodedSlashes: true });
    try {
      const bot = decoding.addUser({ username: 'bot' }).id;
      decoding.addProject({ path: 'acme/web', members: [{ userId: bot, accessLevel: 30 }] });
      const token = decoding.addToken(bot, { scopes: ['api'], expiresAt: '2027-01-01' });
      const report = await diagnose(deps, connection(decoding.baseUrl), token);
      assert.equal(step(report, 'encoded_path').status, 'warn', JSON.stringify(report.steps, null, 2));
      assert.match(step(report, 'encoded_path').message, /decodes %2F/);
      assert.equal(report.ok, true);
      // The decoded path matches no GitLab route: that catch-all 404 is what the doctor detects.
      assert.deepEqual(decoding.takeUnimplemented().map((r) => r.path), ['/api/v4/projects/acme/web']);
    } finally {
      await decoding.close();
    }
  });

  test('clone_url + egress: GitLab reports clone URLs for another address than the one connected to: a warning, since runs clone through the base URL', async () => {
    const proxy = await startReverseProxy(plainGitlab.baseUrl, { upstreamHost: true });
    try {
      const report = await diagnose(deps, connection(proxy.baseUrl), plainToken);
      assert.equal(step(report, 'clone_url').status, 'warn', JSON.stringify(report.steps, null, 2));
      assert.match(step(report, 'clone_url').message, /external_url/);
      assert.match(step(report, 'clone_url').message, /Runs clone through the base URL/);
      assert.ok(step(report, 'clone_url').message.includes(`point to ${new URL(plainGitlab.baseUrl).host}`), step(report, 'clone_url').message);
      assert.equal(step(report, 'egress').status, 'pass');
      assert.ok(step(report, 'egress').message.includes(`${proxy.baseUrl}/<project path>.git`), step(report, 'egress').message);
      assert.equal(report.ok, true);
    } finally {
      await proxy.close();
    }
  });

  test('clock: ten minutes off fails, one minute off warns', async () => {
    for (const [offset, expected] of [[600_000, 'fail'], [60_000, 'warn']] as const) {
      const skewed = await startFakeGitLab({ clockOffsetMs: offset });
      try {
        const bot = skewed.addUser({ username: 'bot' }).id;
        const token = skewed.addToken(bot, { scopes: ['read_repository'], expiresAt: '2027-01-01' });
        const report = await diagnose(deps, connection(skewed.baseUrl, { scopes: ['read_repository'] }), token);
        assert.equal(step(report, 'clock').status, expected);
        assert.match(step(report, 'clock').message, /ahead of this server/);
      } finally {
        await skewed.close();
      }
    }
  });
});
