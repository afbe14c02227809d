/**
 * Run images in `npm run bench` (issue: sandbox start on a cached image within 1.2× of the host layout; the
 * reference agent image's first-use unpack). Called by bench/index.ts with its printing helpers.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { createImageStore } from '../src/images/index.ts';
import { createBubblewrapDriver } from '../src/sandbox/index.ts';
import { referenceAgentImage } from '../test/support/agent-image.ts';
import { buildTinyImage } from '../test/support/tiny-image.ts';

type Helpers = {
  row(name: string, value: string, baselineName: string, baseline: string, extra?: string): void;
  median(values: number[]): number;
  timeIt(times: number, run: () => Promise<unknown>): Promise<number[]>;
};

const run = promisify(execFile);

/** A sandbox's whole start as a run pays it: create the session, run `true`, destroy it. */
async function startOnce(driver: ReturnType<typeof createBubblewrapDriver>, workspaceDir: string, rootfs: string | undefined, id: number): Promise<void> {
  const session = await driver.create({ runId: `bench-img-${id}`, workspaceDir, allowlist: [], outboundPolicy: { allow: [] }, ...(rootfs === undefined ? {} : { rootfs }) });
  try {
    await session.exec({ command: ['true'], env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
  } finally {
    await session.destroy();
  }
}

async function compareStarts(helpers: Helpers, dir: string, label: string, rootfs: string): Promise<void> {
  const workspaceDir = path.join(dir, 'workspace');
  await mkdir(workspaceDir, { recursive: true });
  const driver = createBubblewrapDriver({ stateDir: path.join(dir, 'state') });
  let id = 0;
  await startOnce(driver, workspaceDir, undefined, id++);
  await startOnce(driver, workspaceDir, rootfs, id++);
  // Interleaved, so a busy machine slows both sides alike.
  const host: number[] = [];
  const image: number[] = [];
  for (let i = 0; i < 15; i += 1) {
    host.push(...(await helpers.timeIt(1, () => startOnce(driver, workspaceDir, undefined, id++))));
    image.push(...(await helpers.timeIt(1, () => startOnce(driver, workspaceDir, rootfs, id++))));
  }
  const ratio = helpers.median(image) / helpers.median(host);
  helpers.row(
    `sandbox start, ${label} (median of 15)`,
    `${helpers.median(image).toFixed(1)} ms`,
    'the same on host',
    `${helpers.median(host).toFixed(1)} ms`,
    `${ratio.toFixed(2)}× (target ≤ 1.2×)`,
  );
}

/** The layers' bytes, extracted by tar alone: the floor for unpacking the same image. */
async function tarBaseline(layout: string, digest: string, into: string): Promise<number> {
  const blobs = path.join(layout, 'blobs', 'sha256');
  const manifest = JSON.parse(await readFile(path.join(blobs, digest.slice('sha256:'.length)), 'utf8')) as { layers: { digest: string }[] };
  await mkdir(into, { recursive: true });
  const started = performance.now();
  for (const layer of manifest.layers) await run('/usr/bin/tar', ['-xzf', path.join(blobs, layer.digest.slice('sha256:'.length)), '-C', into]);
  return performance.now() - started;
}

export async function imageSections(helpers: Helpers): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-bench-images-'));
  try {
    const store = createImageStore({ dir: path.join(dir, 'store') });
    const tiny = await store.ready(await buildTinyImage(path.join(dir, 'tiny')));
    if (tiny !== null) await compareStarts(helpers, dir, 'small image', tiny.rootfs);

    const buildStarted = performance.now();
    const built = await referenceAgentImage();
    if (!built.cached) helpers.row('agent image: cold build', `${((performance.now() - buildStarted) / 1000).toFixed(0)} s`, '-', '-', 'cached by recipe hash afterwards');
    let unpackMs = 0;
    let unpackStarted = 0;
    const pulled = await store.pull(built.ref, (line) => {
      if (line.startsWith('Unpacking ')) unpackStarted = performance.now();
      if (line.startsWith('Unpacked ')) unpackMs = performance.now() - unpackStarted;
    });
    const tarMs = await tarBaseline(built.ref.slice('oci:'.length).replace(/:agent$/, ''), pulled.digest, path.join(dir, 'tar'));
    helpers.row('agent image: first-use unpack', `${(unpackMs / 1000).toFixed(1)} s`, 'tar -xzf of its layers', `${(tarMs / 1000).toFixed(1)} s`, `${(pulled.sizeBytes / 1024 ** 2).toFixed(0)} MiB compressed`);
    const agent = await store.ready(built.ref);
    if (agent !== null) await compareStarts(helpers, dir, 'agent image', agent.rootfs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
