import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createRunDir, staleRunDirs } from '../../src/sandbox/run-dir.ts';

const CONTENTS = { uid: 1000, gid: 1000, hostname: 'forgelink', wrapper: '#!/bin/sh\n', files: {} };

test('a sandbox directory being made is never taken for the leftovers of a dead process', async () => {
  // Runs start together: while one makes its directory, another looks for leftovers to remove (bubblewrap.ts).
  const stateDir = await mkdtemp(path.join(tmpdir(), 'forgelink-run-dirs-'));
  try {
    const seenStale = new Set<string>();
    let making = true;
    const looking = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (making) for (const name of await staleRunDirs(stateDir)) seenStale.add(name);
      }),
    );
    for (let round = 0; round < 150; round += 1) {
      await Promise.all(Array.from({ length: 8 }, (_, index) => createRunDir(stateDir, `run_${round}_${index}`, CONTENTS)));
    }
    making = false;
    await looking;
    assert.deepEqual([...seenStale], [], 'a live run\'s directory was reported stale');
    assert.deepEqual(await staleRunDirs(stateDir), []);
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});

test('an owner file that is not JSON marks its directory stale only once it is a minute old', async () => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'forgelink-run-dirs-'));
  try {
    for (const name of ['fresh', 'old']) {
      await mkdir(path.join(stateDir, name));
      await writeFile(path.join(stateDir, name, 'owner.json'), '');
    }
    const minutesAgo = new Date(Date.now() - 2 * 60_000);
    await utimes(path.join(stateDir, 'old', 'owner.json'), minutesAgo, minutesAgo);
    assert.deepEqual(await staleRunDirs(stateDir), ['old']);
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});
