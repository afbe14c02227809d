import { InputError } from './errors.ts';

/**
 * A run image reference (docs/contract.md, "Run images"): `host` (the host's own /usr, no image), or one of
 * skopeo's transports: `oci:<dir>[:<tag>]`, `oci-archive:<file>`, `docker-archive:<file>`,
 * `docker://<registry>/<name>[:<tag>|@sha256:<hex>]`. Local paths are absolute: the server, not the CLI's
 * working directory, reads them.
 */
export type ImageRef =
  | { transport: 'host'; ref: 'host' }
  | { transport: 'oci'; ref: string; path: string; tag: string | null }
  | { transport: 'oci-archive' | 'docker-archive'; ref: string; path: string }
  | { transport: 'docker'; ref: string; name: string };

export const HOST_IMAGE = 'host';

const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** `registry[:port]/path/name` with lower-case path components, then `:tag` or `@sha256:<64 hex>` (or neither: `latest`). */
const DOCKER = /^[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)+(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[0-9a-f]{64})?$|^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[0-9a-f]{64})?$/;

function problem(ref: string, why: string): InputError {
  return new InputError(
    'invalid_image',
    `"${ref}" is not an image reference: ${why}. Use host, oci:<dir>[:<tag>], oci-archive:<file>, docker-archive:<file> or docker://<registry>/<name>:<tag>.`,
    { field: 'image' },
  );
}

function absolutePath(ref: string, text: string): string {
  if (!text.startsWith('/')) throw problem(ref, 'the path must be absolute');
  if (text.includes('\0') || /(^|\/)\.\.?(\/|$)/.test(text)) throw problem(ref, 'the path must be normalised (no . or .. parts)');
  const trimmed = text.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed.replace(/\/{2,}/g, '/');
}

/** Parses and normalises an image reference; throws InputError (field `image`) naming what is wrong. */
export function parseImageRef(input: string): ImageRef {
  const ref = input.trim();
  if (ref === HOST_IMAGE) return { transport: 'host', ref: HOST_IMAGE };
  if (ref === '') throw problem(ref, 'it is empty');
  if (ref.length > 4096 || /[\s\0]/.test(ref)) throw problem(ref.slice(0, 80), 'it holds white space or is too long');
  if (ref.startsWith('oci:')) {
    const rest = ref.slice('oci:'.length);
    const colon = rest.indexOf(':');
    const dir = absolutePath(ref, colon === -1 ? rest : rest.slice(0, colon));
    const tag = colon === -1 ? null : rest.slice(colon + 1);
    if (tag !== null && !TAG.test(tag)) throw problem(ref, `"${tag}" is not a tag (letters, digits, ".", "_", "-")`);
    return { transport: 'oci', ref: `oci:${dir}${tag === null ? '' : `:${tag}`}`, path: dir, tag };
  }
  for (const transport of ['oci-archive', 'docker-archive'] as const) {
    if (!ref.startsWith(`${transport}:`)) continue;
    const file = absolutePath(ref, ref.slice(transport.length + 1));
    if (file.includes(':')) throw problem(ref, 'the file name must not hold ":"');
    return { transport, ref: `${transport}:${file}`, path: file };
  }
  if (ref.startsWith('docker://')) {
    const name = ref.slice('docker://'.length);
    if (!DOCKER.test(name)) throw problem(ref, 'expected docker://<registry>/<name>:<tag> (lower-case name)');
    return { transport: 'docker', ref, name };
  }
  throw problem(ref, 'unknown transport');
}

/** Whether a digest is what skopeo and umoci write: `sha256:` and 64 hex digits. */
export function isImageDigest(digest: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(digest);
}
