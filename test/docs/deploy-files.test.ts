import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

/**
 * The example deployment files docs/deploy.md points to: the Kubernetes manifests parse as YAML (PyYAML, as kubectl's
 * own parser is not here) with the settings the docs explain, and the systemd units pass `systemd-analyze verify`.
 * Neither is applied to a cluster or started by systemd here (docs/deploy.md, "What was tested").
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);

test('the Kubernetes manifests parse, and the worker carries the settings bubblewrap needs', async () => {
  const dir = path.join(ROOT, 'deploy', 'kubernetes');
  const script = 'import json, sys, yaml\nprint(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))';
  const docs: Record<string, any[]> = {};
  for (const file of (await readdir(dir)).filter((name) => name.endsWith('.yaml'))) {
    docs[file] = JSON.parse((await run('python3', ['-c', script, path.join(dir, file)])).stdout);
  }
  assert.deepEqual(Object.keys(docs).sort(), ['api.yaml', 'secret.yaml', 'worker.yaml']);
  assert.deepEqual(Object.keys(docs['secret.yaml']?.[0]?.stringData ?? {}).sort(), ['database-url', 'master-key']);
  const worker = docs['worker.yaml']?.find((doc) => doc.kind === 'Deployment')?.spec.template.spec;
  assert.equal(worker.hostUsers, false);
  assert.equal(worker.securityContext.seccompProfile.type, 'Unconfined');
  assert.equal(worker.securityContext.appArmorProfile.type, 'Unconfined');
  const container = worker.containers[0];
  assert.deepEqual(container.args, ['worker']);
  assert.equal(container.securityContext.procMount, 'Unmasked');
  assert.equal(container.securityContext.allowPrivilegeEscalation, false);
  const api = docs['api.yaml']?.find((doc) => doc.kind === 'Deployment')?.spec.template.spec.containers[0];
  assert.deepEqual(api.args, ['serve', '--no-runs']);
  assert.equal(api.readinessProbe.httpGet.path, '/readyz');
  for (const spec of [worker.containers[0], api]) {
    const names = spec.env.map((entry: { name: string }) => entry.name);
    assert.ok(names.includes('DATABASE_URL') && names.includes('FORGELINK_MASTER_KEY_FILE'));
    assert.equal(spec.env.find((entry: { name: string }) => entry.name === 'DATABASE_URL').valueFrom.secretKeyRef.name, 'forgelink');
  }
});

test('the systemd units pass systemd-analyze verify', async (t) => {
  if (!(await access('/usr/bin/systemd-analyze').then(() => true, () => false))) {
    t.skip('systemd-analyze is not installed');
    return;
  }
  // verify wants ExecStart's program to exist: the units name /opt/forgelink, which is put in a temp dir here.
  const temp = await mkdtemp(path.join(tmpdir(), 'forgelink-units-'));
  try {
    const bin = path.join(temp, 'opt', 'bin');
    await mkdir(bin, { recursive: true });
    await copyFile(path.join(ROOT, 'bin', 'forgelink'), path.join(bin, 'forgelink'));
    await chmod(path.join(bin, 'forgelink'), 0o755);
    const units: string[] = [];
    for (const name of ['forgelink-api.service', 'forgelink-worker.service']) {
      const text = await readFile(path.join(ROOT, 'deploy', 'systemd', name), 'utf8');
      assert.match(text, /^ExecStart=\/opt\/forgelink\/bin\/forgelink /m);
      const unit = path.join(temp, name);
      await writeFile(unit, text.replaceAll('/opt/forgelink/bin/', `${bin}/`));
      units.push(unit);
    }
    const result = await run('systemd-analyze', ['verify', ...units]).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: error.stdout + error.stderr }),
    );
    // Lines about the host's own units (no systemd as PID 1 in a container, say) are not about these files.
    const ours = result.output.split('\n').filter((line) => units.some((unit) => line.includes(path.basename(unit))));
    assert.deepEqual(ours, [], result.output);
    assert.equal(result.code, 0, result.output);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
});
