import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../support/wait.ts';
import { LOOPBACK_ALLOWED, run, sandboxFixture, sh, textServer } from './helpers.ts';

test('two sessions at once: each sees its own workspace and reaches only its own allowlist', async (t) => {
  const box = await sandboxFixture(t);
  const alpha = await textServer('alpha');
  const beta = await textServer('beta');
  t.after(() => Promise.all([alpha.close(), beta.close()]));
  const alphaDir = await box.workspace('alpha');
  const betaDir = await box.workspace('beta');
  await writeFile(path.join(alphaDir, 'alpha.txt'), 'a\n');
  await writeFile(path.join(betaDir, 'beta.txt'), 'b\n');
  const [one, two] = await Promise.all([
    box.create({ runId: 'alpha', workspaceDir: alphaDir, allowlist: [alpha.origin], outboundPolicy: LOOPBACK_ALLOWED }),
    box.create({ runId: 'beta', workspaceDir: betaDir, allowlist: [beta.origin], outboundPolicy: LOOPBACK_ALLOWED }),
  ]);

  const script = (own: string, other: string, otherDir: string) => `
    ls /workspace
    test -e "${otherDir}" && echo "sees ${otherDir}"
    ls /home/agent/../ | tr '\\n' ' '; echo
    curl -sS http://${own}/mine
    curl -sS http://${other}/theirs
    sleep 0.3`;
  const [a, b] = await Promise.all([
    run(one, sh(script(alpha.origin, beta.origin, betaDir), box.marker), { env: { MARK: box.marker } }),
    run(two, sh(script(beta.origin, alpha.origin, alphaDir), box.marker), { env: { MARK: box.marker } }),
  ]);
  assert.equal(a.stdout, `alpha.txt\nagent \nalpha GET /mine\nforgelink: ${beta.origin} is not on this run's allowlist.\n`, a.stderr);
  assert.equal(b.stdout, `beta.txt\nagent \nbeta GET /mine\nforgelink: ${alpha.origin} is not on this run's allowlist.\n`, b.stderr);
  assert.deepEqual(alpha.seen, ['GET /mine']);
  assert.deepEqual(beta.seen, ['GET /mine']);
  assert.deepEqual(one.egress(), { allowed: [alpha.origin], refused: [beta.origin] });
  assert.deepEqual(two.egress(), { allowed: [beta.origin], refused: [alpha.origin] });
});

test("one session's fork bomb does not stop another session", async (t) => {
  const box = await sandboxFixture(t);
  const bomberDir = await box.workspace();
  const [bomber, bystander] = await Promise.all([
    box.create({ runId: 'bomber', workspaceDir: bomberDir, allowlist: [], outboundPolicy: { allow: [] }, limits: { processes: 32 } }),
    box.create({ runId: 'bystander', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: { allow: [] }, limits: { processes: 32 } }),
  ]);
  // The bomber holds every process it may have until the bystander, forking a few, is done.
  const hold =
    'import os, time\nwhile True:\n    try:\n        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n    except OSError:\n        print("full", flush=True)\n' +
    '        while not os.path.exists("/workspace/release"):\n            time.sleep(0.02)\n        break';
  let full = false;
  const bomb = bomber.exec({
    command: ['/usr/bin/python3', '-c', hold],
    env: { MARK: box.marker },
    timeoutMs: 60_000,
    onOutput: (chunk) => (full ||= chunk.includes('full')),
  });
  await waitFor('the bomber to use up its processes', () => full);
  const fine = await run(bystander, sh('for i in 1 2 3 4 5 6 7 8; do sleep 0.1 & done; wait; echo fine', box.marker), { env: { MARK: box.marker } });
  await writeFile(path.join(bomberDir, 'release'), '');
  assert.equal(fine.stdout, 'fine\n', fine.stderr);
  assert.equal((await bomb).exitCode, 0);
});
