import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { failsWithOneLine, ok } from '../support/cli-checks.ts';
import { forgelinkCli, type Result } from '../support/processes.ts';
import { buildTinyImage } from '../support/tiny-image.ts';

describe('forgelink images pull | list | rm on this machine\'s store (real skopeo and umoci)', () => {
  let home: string;
  let imageDir: string;
  let env: NodeJS.ProcessEnv;
  let ref: string;

  before(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'forgelink-images-cli-'));
    imageDir = path.join(home, 'store');
    env = { PATH: process.env.PATH, HOME: home, FORGELINK_DATA_DIR: path.join(home, 'data'), FORGELINK_IMAGE_DIR: imageDir };
    ref = await buildTinyImage(path.join(home, 'src'), { tag: 'v1' });
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  const cli = (args: string[]): Promise<Result> => forgelinkCli(args, { env });

  /** A failed pull: its progress lines on stderr, then the one `forgelink: …` line that says why. */
  function failsAfterProgress(result: Result, pattern: RegExp): void {
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.filter((line) => line.startsWith('forgelink:')).length, 1, result.stderr);
    failsWithOneLine({ ...result, stderr: `${lines.at(-1)}\n` }, pattern);
  }

  test('pull shows its progress on stderr, prints the image on stdout, and list and rm see it', async () => {
    const pulled = ok(await cli(['images', 'pull', ref, '--json']));
    const image = JSON.parse(pulled.stdout);
    assert.equal(image.ref, ref);
    assert.match(image.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(image.unpacked, true);
    assert.ok(image.sizeBytes > 1000);
    assert.match(pulled.stderr, /Copying blob sha256:/);
    assert.match(pulled.stderr, /Unpacking /);

    const listed = JSON.parse(ok(await cli(['images', 'list', '--json'])).stdout);
    assert.deepEqual(listed.images.map((entry: { ref: string; digest: string }) => [entry.ref, entry.digest]), [[ref, image.digest]]);
    assert.match(ok(await cli(['images', 'list'])).stdout, new RegExp(`${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  sha256:`));

    const again = ok(await cli(['images', 'pull', ref, '--json']));
    assert.equal(JSON.parse(again.stdout).digest, image.digest);
    assert.doesNotMatch(again.stderr, /Unpacking/, 'the same digest is not unpacked twice');

    ok(await cli(['images', 'rm', ref]));
    assert.deepEqual(JSON.parse(ok(await cli(['images', 'list', '--json'])).stdout).images, []);
    assert.deepEqual((await readdir(path.join(imageDir, 'unpacked'))).filter((entry) => !entry.startsWith('.')), [], 'the unpacked tree went too');
    const blobs = await readdir(path.join(imageDir, 'layout', 'blobs', 'sha256'));
    assert.deepEqual(blobs, [], 'and its blobs');
  });

  test('a bad reference, an unknown image and a host pull fail with one line naming the problem, and leave nothing behind', async () => {
    failsWithOneLine(await cli(['images', 'pull', 'oci:relative/path']), /not an image reference: the path must be absolute/);
    failsWithOneLine(await cli(['images', 'pull', 'nonsense']), /unknown transport/);
    failsWithOneLine(await cli(['images', 'pull', 'host']), /host.*not an image to pull/);
    failsWithOneLine(await cli(['images', 'pull', `oci:${home}/nowhere`]), /no OCI layout directory at .*nowhere/);
    failsAfterProgress(await cli(['images', 'pull', `${ref.replace(/:v1$/, '')}:v2`]), /Image oci:.*:v2 could not be found/);
    failsWithOneLine(await cli(['images', 'rm', ref]), /No image .* in the store/);
    failsWithOneLine(await cli(['images', 'build', 'everything']), /no image recipe "everything"/);
    const listed = JSON.parse(ok(await cli(['images', 'list', '--json'])).stdout);
    assert.deepEqual(listed.images, []);
    const leftovers = await readdir(path.join(imageDir, 'unpacked')).catch(() => []);
    assert.deepEqual(leftovers, []);
  });

  test('a damaged blob in the source is refused by its digest, and nothing half-made stays in the store', async () => {
    const damaged = await buildTinyImage(path.join(home, 'damaged'), { tag: 'v1' });
    const layout = damaged.slice('oci:'.length).replace(/:v1$/, '');
    const blobs = path.join(layout, 'blobs', 'sha256');
    const entries = await readdir(blobs);
    // The largest blob is the layer: cut it short.
    const { stat } = await import('node:fs/promises');
    const sizes = await Promise.all(entries.map(async (entry) => ({ entry, size: (await stat(path.join(blobs, entry))).size })));
    const layer = sizes.sort((a, b) => b.size - a.size)[0]!.entry;
    await truncate(path.join(blobs, layer), 1000);
    const result = await cli(['images', 'pull', damaged]);
    failsAfterProgress(result, /Pulling .* failed: .*digest/i);
    assert.deepEqual(JSON.parse(ok(await cli(['images', 'list', '--json'])).stdout).images, []);
    assert.deepEqual((await readdir(path.join(imageDir, 'unpacked'))).filter((entry) => entry.startsWith('.tmp')), []);
    assert.deepEqual(await readdir(path.join(imageDir, 'layout', 'blobs', 'sha256')).catch(() => []), [], 'the copy\'s partial blobs were collected');
  });
});
