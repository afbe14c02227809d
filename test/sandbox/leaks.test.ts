import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { waitFor } from '../support/wait.ts';
import { run, sandboxFixture, sh, textServer, LOOPBACK_ALLOWED } from './helpers.ts';

const SECRET = 'glpat-SANDBOX-LEAK-CANARY-7f3a9c';

/** Host processes whose command line or initial environment holds `text`. */
async function holders(text: string): Promise<{ pid: number; file: string; cmdline: string }[]> {
  const found: { pid: number; file: string; cmdline: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'latin1').catch(() => '')).replaceAll('\0', ' ');
    for (const file of ['cmdline', 'environ']) {
      const content = await readFile(`/proc/${entry}/${file}`, 'latin1').catch(() => '');
      if (content.includes(text)) found.push({ pid: Number(entry), file, cmdline });
    }
  }
  return found;
}

test('a secret in the environment is in no command line and in no host-side process', async (t) => {
  const box = await sandboxFixture(t);
  const server = await textServer('gitlab');
  t.after(() => server.close());
  const session = await box.create({ runId: 'leak', workspaceDir: await box.workspace(), allowlist: [server.origin], outboundPolicy: LOOPBACK_ALLOWED });
  let output = '';
  const stop = new AbortController();
  const pending = session.exec({
    signal: stop.signal,
    command: sh('echo started; sleep 30', box.marker),
    env: { GITLAB_TOKEN: SECRET, MARK: box.marker },
    timeoutMs: 20_000,
    onOutput: (chunk) => (output += chunk),
  });
  await waitFor('the command to start', () => output.includes('started'));

  const bwrap: number[] = [];
  for (const entry of await readdir('/proc')) {
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'latin1').catch(() => '');
    if (cmdline.startsWith('/usr/bin/bwrap\0--args\0') && cmdline.includes(box.marker)) bwrap.push(Number(entry));
  }
  assert.ok(bwrap.length >= 1, 'bwrap should be running');
  for (const pid of bwrap) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1');
    assert.ok(!cmdline.includes(SECRET), 'the secret is in bwrap argv');
    assert.ok(!cmdline.includes('--setenv'), 'environment options belong in the --args payload');
  }
  // Inside, the wrapper shell, socat and the command run with the sandbox environment: that is where the
  // token belongs. Outside — bwrap on the host, the shell that joins the cgroups and sets the limits — nothing may hold it.
  const seen = await holders(SECRET);
  assert.ok(seen.length > 0, 'the command itself should have the token');
  for (const holder of seen) {
    assert.equal(holder.file, 'environ', `the secret is in the command line of ${holder.cmdline}`);
    assert.ok(!holder.cmdline.startsWith('/usr/bin/bwrap'), `bwrap's own environment holds the secret (${holder.pid})`);
  }

  stop.abort();
  assert.equal((await pending).canceled, true);
  const result = await run(session, sh('cat /proc/1/environ | tr "\\0" "\\n" | grep -c GITLAB_TOKEN || true', box.marker), {
    env: { GITLAB_TOKEN: SECRET, MARK: box.marker },
  });
  // pid 1 inside is bwrap's init: it was started with the host-side environment, not the agent's.
  assert.equal(result.stdout.trim(), '0');
  assert.deepEqual(await holders(SECRET), []);
});
