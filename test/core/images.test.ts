import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError, parseImageRef } from '../../src/core/index.ts';

for (const [input, expected] of [
  ['host', { transport: 'host', ref: 'host' }],
  [' oci:/srv/agent ', { transport: 'oci', ref: 'oci:/srv/agent', path: '/srv/agent', tag: null }],
  ['oci:/srv/agent/:v1.2', { transport: 'oci', ref: 'oci:/srv/agent:v1.2', path: '/srv/agent', tag: 'v1.2' }],
  ['oci:/srv//agent:agent', { transport: 'oci', ref: 'oci:/srv/agent:agent', path: '/srv/agent', tag: 'agent' }],
  ['oci-archive:/tmp/agent.tar', { transport: 'oci-archive', ref: 'oci-archive:/tmp/agent.tar', path: '/tmp/agent.tar' }],
  ['docker-archive:/tmp/saved.tar', { transport: 'docker-archive', ref: 'docker-archive:/tmp/saved.tar', path: '/tmp/saved.tar' }],
  ['docker://registry.corp:5000/agents/claude:2.1', { transport: 'docker', ref: 'docker://registry.corp:5000/agents/claude:2.1', name: 'registry.corp:5000/agents/claude:2.1' }],
  ['docker://debian', { transport: 'docker', ref: 'docker://debian', name: 'debian' }],
  [`docker://ghcr.io/acme/agent@sha256:${'a'.repeat(64)}`, { transport: 'docker', ref: `docker://ghcr.io/acme/agent@sha256:${'a'.repeat(64)}`, name: `ghcr.io/acme/agent@sha256:${'a'.repeat(64)}` }],
] as const) {
  test(`the image reference ${input.trim()} is read and normalised`, () => assert.deepEqual(parseImageRef(input), expected));
}

for (const [input, why] of [
  ['', /it is empty/],
  ['ubuntu', /unknown transport/],
  ['oci:agent', /absolute/],
  ['oci:/srv/../etc', /normalised/],
  ['oci:/srv/agent:bad/tag', /not a tag/],
  ['oci-archive:relative.tar', /absolute/],
  ['docker://Registry/UPPER:1', /lower-case/],
  ['docker://', /docker:\/\//],
  ['oci:/srv/a b', /white space/],
] as const) {
  test(`the image reference "${input}" is refused, naming the field and what is wrong`, () => {
    assert.throws(
      () => parseImageRef(input),
      (error: unknown) => error instanceof InputError && error.code === 'invalid_image' && error.field === 'image' && why.test(error.message),
    );
  });
}
