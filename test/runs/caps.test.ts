import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

const MiB = 1024 ** 2;

describe('run caps: memory and disk (real bubblewrap, fake GitLab)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let connectionId: string;

  before(async () => {
    gitlab = await startFakeGitLab();
    const bot = gitlab.addUser({ username: 'bot' }).id;
    gitlab.addProject({ path: 'g/app', members: [{ userId: bot, accessLevel: 30 }] });
    const token = gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-01-01' });
    forgelink = await startForgelink({ runs: { memoryMaxBytes: 128 * MiB, diskMaxBytes: 32 * MiB } });
    alice = await forgelink.addUser('alice');
    const created = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, token });
    assert.equal(created.status, 201, created.text);
    connectionId = created.json.id;
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  async function runToEnd(command: string[]): Promise<any> {
    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId, project: 'g/app', command, timeoutSeconds: 120 });
    assert.equal(started.status, 201, started.text);
    for (;;) {
      const current = await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`);
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) return current.json;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function logText(runId: string): Promise<string> {
    const response = await forgelink.call(alice, 'GET', `/api/v1/runs/${runId}/log`);
    return response.json.entries.map((entry: { text: string }) => entry.text).join('');
  }

  /** The host is left as it was: no run dir, no sandbox, no process of the run. */
  async function assertNothingLeft(word: string): Promise<void> {
    assert.deepEqual(await readdir(path.join(forgelink.workDir, 'runs')).catch(() => []), []);
    assert.deepEqual(await readdir(path.join(forgelink.workDir, 'sandboxes')).catch(() => []), []);
    const left: string[] = [];
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
      if (cmdline.includes(word)) left.push(cmdline.replaceAll('\0', ' '));
    }
    assert.deepEqual(left, [], 'a process of the run survived');
  }

  test('a run allocating past its memory cap ends failed with memory_limit', async () => {
    const script = 'chunks = []\nfor i in range(64):\n    chunks.append(bytearray(16 * 1024 * 1024))\n    print("allocated", (i + 1) * 16, "MiB", flush=True)\nprint("memory-hog-finished")';
    const run = await runToEnd(['python3', '-c', script, 'memory-hog']);
    assert.equal(run.status, 'failed');
    assert.equal(run.error.code, 'memory_limit', JSON.stringify(run.error));
    assert.match(run.error.message, /memory cap of 128 MiB \(FORGELINK_RUN_MEMORY_MAX\)/);
    const log = await logText(run.id);
    assert.match(log, /Limits: memory 128 MiB, disk 32 MiB/);
    assert.match(log, /allocated 16 MiB/);
    assert.doesNotMatch(log, /^memory-hog-finished$/m);
    assert.match(log, /^Agent finished: The agent ran out of memory: a process was killed/m);
    await assertNothingLeft('memory-hog');
  });

  test('a run writing past its disk cap ends failed with disk_limit', async () => {
    // Writes until something stops it: only the disk cap can end this run before its timeout. (How far past the cap
    // it gets depends on how fast the machine writes between two measurements, so that is not asserted.)
    const script = 'while :; do head -c 1M /dev/zero >> /workspace/fill; done';
    const run = await runToEnd(['sh', '-c', script, 'disk-hog']);
    assert.equal(run.status, 'failed');
    assert.equal(run.error.code, 'disk_limit', JSON.stringify(run.error));
    assert.match(run.error.message, /disk cap of 32 MiB \(FORGELINK_RUN_DISK_MAX\)/);
    const log = await logText(run.id);
    assert.match(log, /^Agent finished: The agent was stopped for filling the workspace and home directory past the run's disk cap/m);
    await assertNothingLeft('disk-hog');
  });

  test('a normal run under the same caps is unaffected', async () => {
    const script = 'git log --oneline | head -1; python3 -c "print(sum(range(10**6)))"; head -c 4M /dev/zero > /workspace/small; echo normal-done';
    const run = await runToEnd(['sh', '-c', script, 'normal-run']);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.match(await logText(run.id), /499999500000\nnormal-done/);
    await assertNothingLeft('normal-run');
  });
});
