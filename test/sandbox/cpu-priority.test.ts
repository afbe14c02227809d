import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { waitFor } from '../support/wait.ts';
import { isRoot, run, sandboxFixture, sh } from './helpers.ts';
import { setCpuWeight } from '../../src/sandbox/cgroups.ts';

const NO_NETWORK = { allow: [] };

/** Field 19 of /proc/<pid>/stat, after the command name in parentheses (which may hold spaces). */
async function niceOf(pid: number | 'self'): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/**
 * Runs compete with forgelink's own processes as one small share, not as equals (docs/architecture.md, "CPU
 * priority"): every process of a run starts at nice 10 and sits in a cpu cgroup whose base carries the runs' low
 * weight, with the run's CPU cap in its own cgroup. Read from /proc and the cgroup files, not timed.
 */
test('a run\'s processes run at nice 10 inside the runs\' low-weight cpu cgroup, with the run\'s CPU cap', { skip: !isRoot }, async (t) => {
  const box = await sandboxFixture(t, { cpuWeight: 20, nice: 10 });
  const session = await box.create({
    runId: 'cpu',
    workspaceDir: await box.workspace(),
    allowlist: [],
    outboundPolicy: NO_NETWORK,
    limits: { cpuMillicores: 500 },
  });
  const env = { MARK: box.marker };
  // Seen from inside: the shell's own nice value.
  const inside = await run(session, sh('cut -d" " -f19 /proc/self/stat', box.marker), { env });
  assert.equal(inside.stdout.trim(), '10');

  const find = promisify(execFile)('find', ['/sys/fs/cgroup', '-maxdepth', '8', '-type', 'd', '-name', `${process.pid}-cpu`]);
  const dirs = (await find).stdout.trim().split('\n').filter(Boolean);
  // On v1 the run has a directory per controller; the one with the cpu files is its cpu cgroup (on v2, the only one).
  const candidates = await Promise.all(dirs.map(async (dir) => ({ dir, files: (await promisify(execFile)('ls', [dir])).stdout })));
  const cpuDir = candidates.find((entry) => /cpu\.max|cpu\.cfs_quota_us/.test(entry.files))?.dir;
  assert.ok(cpuDir !== undefined, `the run has a cpu cgroup (found ${dirs.join(', ')})`);
  const base = path.dirname(cpuDir);
  // The base is shared by every sandbox on this machine: the other test files' runs get an equal share back.
  t.after(() => setCpuWeight(base, 100));
  const v2 = candidates.find((entry) => entry.dir === cpuDir)?.files.includes('cpu.max') ?? false;
  if (v2) {
    assert.equal((await readFile(path.join(base, 'cpu.weight'), 'utf8')).trim(), '20');
    assert.equal((await readFile(path.join(cpuDir, 'cpu.max'), 'utf8')).trim(), '50000 100000');
  } else {
    assert.equal((await readFile(path.join(base, 'cpu.shares'), 'utf8')).trim(), String(Math.round((20 * 1024) / 100)));
    assert.equal((await readFile(path.join(cpuDir, 'cpu.cfs_quota_us'), 'utf8')).trim(), '50000');
    assert.equal((await readFile(path.join(cpuDir, 'cpu.cfs_period_us'), 'utf8')).trim(), '100000');
  }

  // Seen from the host while a command runs: every process in the run's cpu cgroup is at nice 10; forgelink is not.
  const stop = new AbortController();
  const running = run(session, sh('sleep 60', box.marker), { env, signal: stop.signal });
  let members: number[] = [];
  await waitFor('the running command\'s processes in the run\'s cpu cgroup', async () => {
    members = (await readFile(path.join(cpuDir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean).map(Number);
    return members.length >= 2;
  });
  for (const pid of members) assert.equal(await niceOf(pid), 10, `process ${pid} of the run`);
  stop.abort();
  assert.equal((await running).canceled, true);
  assert.equal(await niceOf('self'), 0, 'forgelink itself keeps its priority');
});

test('without a cpu cgroup a run still runs at nice 10, and says its CPU cap is not enforced', async (t) => {
  const box = await sandboxFixture(t, { cpuCgroup: 'off', nice: 10 });
  const session = await box.create({
    runId: 'nice',
    workspaceDir: await box.workspace(),
    allowlist: [],
    outboundPolicy: NO_NETWORK,
    limits: { cpuMillicores: 1500 },
  });
  const result = await run(session, sh('cut -d" " -f19 /proc/self/stat', box.marker), { env: { MARK: box.marker } });
  assert.equal(result.stdout.trim(), '10');
  assert.match(session.notices?.join('\n') ?? '', /CPU priority: below forgelink's own processes \(nice 10\)/);
  assert.match(session.notices?.join('\n') ?? '', /the CPU cap \(FORGELINK_RUN_CPU_MAX\) is not enforced/);
});
