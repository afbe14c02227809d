import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { buildTinyImage } from '../support/tiny-image.ts';

/** What the agent does inside the image: says which system it sees, then pushes a branch (credential helper, CA bundle, proxy). */
const AGENT_SCRIPT = [
  'cat /etc/image-marker',
  'id -un',
  'if test -e /usr/bin/python3; then echo host-python-visible; fi',
  'git -C /workspace checkout -q -b from-image',
  'git -C /workspace commit -q --allow-empty -m "made inside the image"',
  'git -C /workspace push -q origin from-image',
].join(' && ');

describe('runs on an OCI image: the same sandbox over an image\'s root (real skopeo, umoci, bubblewrap; fake GitLab over HTTPS)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let connectionId: string;
  let imagesDir: string;
  let imageRef: string;
  let noSocatRef: string;

  before(async () => {
    imagesDir = await mkdtemp(path.join(tmpdir(), 'forgelink-image-src-'));
    imageRef = await buildTinyImage(imagesDir, { tag: 'agent', marker: 'tiny-image-agent' });
    noSocatRef = await buildTinyImage(imagesDir, { tag: 'no-socat', omit: ['/usr/bin/socat'] });
    gitlab = await startFakeGitLab({ tls: true });
    const botId = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    gitlab.addProject({ path: 'acme/app', members: [{ userId: botId, accessLevel: 30 }] });
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
    const token = gitlab.addToken(botId, { scopes: ['api'], expiresAt: '2027-06-30' });
    const created = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(created.status, 201, created.text);
    connectionId = created.json.id;
  });
  after(async () => {
    await forgelink?.close();
    await gitlab?.close();
    await rm(imagesDir, { recursive: true, force: true });
  });

  async function start(body: Record<string, unknown>) {
    return forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId, project: 'acme/app', ...body });
  }

  async function runToEnd(body: Record<string, unknown>): Promise<{ run: any; log: string }> {
    const started = await start(body);
    assert.equal(started.status, 201, started.text);
    return finish(started.json.id);
  }

  async function finish(id: string): Promise<{ run: any; log: string }> {
    for (;;) {
      const current = await forgelink.call(alice, 'GET', `/api/v1/runs/${id}`);
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) {
        const log = await forgelink.call(alice, 'GET', `/api/v1/runs/${id}/log`);
        return { run: current.json, log: log.json.entries.map((entry: { text: string }) => entry.text).join('') };
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  function unpackedTrees(): Promise<string[]> {
    return readdir(path.join(forgelink.workDir, 'images', 'unpacked')).catch(() => []);
  }

  test('an agent runs on the image\'s system, pushes through the proxy with the credential helper and the CA bundle, and the run records the digest', async () => {
    const { run, log } = await runToEnd({ image: imageRef, command: ['sh', '-c', AGENT_SCRIPT] });
    assert.equal(run.status, 'succeeded', log);
    assert.equal(run.image.ref, imageRef);
    assert.match(run.image.digest, /^sha256:[0-9a-f]{64}$/);
    assert.match(log, /tiny-image-agent\nagent\n/, 'the image\'s own /etc, and the generated passwd');
    assert.doesNotMatch(log, /^host-python-visible$/m, 'nothing of the host\'s /usr');
    assert.match(log, /Unpacking oci:/);
    assert.deepEqual(run.outputs.branches.map((branch: { name: string }) => branch.name), ['from-image']);
    assert.equal((await unpackedTrees()).length, 1);

    const again = await runToEnd({ image: imageRef, command: ['cat', '/etc/image-marker'] });
    assert.equal(again.run.status, 'succeeded', again.log);
    assert.equal(again.run.image.digest, run.image.digest);
    assert.doesNotMatch(again.log, /Unpacking/, 'the second run uses the unpacked tree');
  });

  test('two first uses at once unpack the image once, and both runs see the whole tree', async () => {
    const ref = await buildTinyImage(imagesDir, { tag: 'concurrent', marker: 'concurrent-marker' });
    const before = (await unpackedTrees()).length;
    const started = await Promise.all([0, 1, 2].map(() => start({ image: ref, command: ['cat', '/etc/image-marker'] })));
    const finished = await Promise.all(started.map((response) => finish(response.json.id)));
    for (const { run, log } of finished) {
      assert.equal(run.status, 'succeeded', log);
      assert.match(log, /concurrent-marker/);
    }
    assert.equal(finished.filter(({ log }) => /Unpacking oci:/.test(log)).length, 1, 'one unpack for three runs');
    assert.equal((await unpackedTrees()).length, before + 1);
  });

  test('a damaged unpacked tree (a file the sandbox needs deleted, then its marker cut short) is unpacked again before the run', async () => {
    const ref = await buildTinyImage(imagesDir, { tag: 'damaged', marker: 'damaged-marker' });
    const first = await runToEnd({ image: ref, command: ['true'] });
    assert.equal(first.run.status, 'succeeded', first.log);
    const tree = path.join(forgelink.workDir, 'images', 'unpacked', first.run.image.digest.replace(':', '-'));
    await rm(path.join(tree, 'rootfs', 'etc', 'passwd'));
    const second = await runToEnd({ image: ref, command: ['cat', '/etc/image-marker'] });
    assert.equal(second.run.status, 'succeeded', second.log);
    assert.match(second.log, /damaged or incomplete: unpacking it again/);
    await writeFile(path.join(tree, 'forgelink-image.json'), '{"digest":"sha256:truncated');
    const third = await runToEnd({ image: ref, command: ['cat', '/etc/image-marker'] });
    assert.equal(third.run.status, 'succeeded', third.log);
    assert.match(third.log, /unpacking it again/);
    assert.match(third.log, /damaged-marker/);
  });

  test('bad input is refused before the run is queued, naming the image', async () => {
    for (const image of ['oci:relative/dir', 'ftp://example.com/x', 'docker://Upper/Case', 'oci:/x:bad tag']) {
      const response = await start({ image, command: ['true'] });
      assert.equal(response.status, 400, `${image}: ${response.text}`);
      assert.equal(response.json.error.code, 'invalid_image');
      assert.equal(response.json.error.field, 'image');
    }
    const missing = await start({ image: path.join('oci:', imagesDir, 'nowhere'), command: ['true'] });
    assert.equal(missing.status, 404, missing.text);
    assert.equal(missing.json.error.field, 'image');
    assert.match(missing.json.error.message, /nowhere/);
    const runs = await forgelink.call(alice, 'GET', '/api/v1/runs');
    assert.ok(!runs.json.runs.some((run: any) => run.image.ref.includes('nowhere')), 'nothing was queued');
  });

  test('an image without what every sandbox needs (socat) fails the run with a message naming it, and leaves no tree half-made', async () => {
    const { run } = await runToEnd({ image: noSocatRef, command: ['true'] });
    assert.equal(run.status, 'failed');
    assert.equal(run.error.code, 'image_unusable');
    assert.match(run.error.message, /socat/);
    for (const entry of await unpackedTrees()) assert.doesNotMatch(entry, /^\.tmp-/);
  });

  test('without an image a run stays on the host layout', async () => {
    const { run, log } = await runToEnd({ command: ['sh', '-c', 'test -e /usr/bin/python3 && echo host-python-visible'] });
    assert.equal(run.status, 'succeeded', log);
    assert.deepEqual(run.image, { ref: 'host', digest: null });
    assert.match(log, /^host-python-visible$/m);
  });
});
