import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ForgelinkError,
  InputError,
  isImageDigest,
  NotFoundError,
  parseImageRef,
  type ImageRef,
} from '../core/index.ts';
import { removeTree } from '../sandbox/index.ts';
import { prepareRoot } from './prepare.ts';
import { lastError, runTool, withFileLock } from './tools.ts';

export type ImageStoreOptions = {
  /** FORGELINK_IMAGE_DIR: the OCI layout store, the unpacked trees and the lock. */
  dir: string;
  skopeoPath?: string;
  umociPath?: string;
  flockPath?: string;
  /** Extra environment for skopeo (an upstream proxy, say). */
  env?: Record<string, string>;
};

/** One pulled image, as `images list` shows it. */
export type StoredImage = {
  ref: string;
  digest: string;
  /** The manifest's layers and config, compressed, as stored. */
  sizeBytes: number;
  pulledAt: string;
  /** Whether the tree is unpacked and whole (runs of it start at once). */
  unpacked: boolean;
};

/** A run's image, ready: its digest and the read-only tree to bind at `/`. */
export type ReadyImage = { ref: string; digest: string; rootfs: string };

export type ImageProgress = (line: string) => void;

/** What the store keeps per reference (refs/<key>.json). */
type RefRecord = { ref: string; tag: string; digest: string; pulledAt: string };

/** Written into an unpacked tree last, after the tree is complete (forgelink-image.json). */
type Marker = { digest: string; unpackedAt: string; missingTools: string[] };

const MARKER = 'forgelink-image.json';
/** Paths every prepared tree has (images/prepare.ts): a cheap check that the tree was not cut short since. */
const TREE_PROBES = ['rootfs/etc/passwd', 'rootfs/etc/forgelink', 'rootfs/workspace', 'rootfs/home/agent', 'rootfs/run/forgelink', 'rootfs/tmp', 'rootfs/opt/forgelink/mirror'];

/**
 * Run images (docs/architecture.md, "Run images"): skopeo copies a reference into one OCI layout under
 * FORGELINK_IMAGE_DIR (checking every blob against its digest); each manifest digest is unpacked once, with
 * umoci (rootless), into `unpacked/sha256-<hex>/rootfs`, which every run of that image binds read-only. An
 * unpack happens in a temporary directory renamed into place with its marker only once it is complete, under
 * the store's lock, so concurrent first uses unpack once and no run sees half a tree.
 */
export function createImageStore(options: ImageStoreOptions) {
  const dir = path.resolve(options.dir);
  const layout = path.join(dir, 'layout');
  const refsDir = path.join(dir, 'refs');
  const unpackedDir = path.join(dir, 'unpacked');
  const lockFile = path.join(dir, 'store.lock');
  const skopeo = options.skopeoPath ?? '/usr/bin/skopeo';
  const umoci = options.umociPath ?? '/usr/bin/umoci';
  /** Unpacks in this process, by digest: a second run of the same image waits for the first's. */
  const inFlight = new Map<string, Promise<ReadyImage>>();

  async function ensureDirs(): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const sub of [refsDir, unpackedDir]) await mkdir(sub, { recursive: true, mode: 0o700 });
  }

  function locked<T>(use: () => Promise<T>): Promise<T> {
    return ensureDirs().then(() => withFileLock(lockFile, use, options.flockPath));
  }

  function keyOf(ref: string): string {
    return createHash('sha256').update(ref).digest('hex').slice(0, 32);
  }

  function treeDir(digest: string): string {
    return path.join(unpackedDir, digest.replace(':', '-'));
  }

  async function readRecord(ref: string): Promise<RefRecord | null> {
    const text = await readFile(path.join(refsDir, `${keyOf(ref)}.json`), 'utf8').catch(() => null);
    if (text === null) return null;
    try {
      const record = JSON.parse(text) as RefRecord;
      return record.ref === ref && isImageDigest(record.digest) ? record : null;
    } catch {
      return null;
    }
  }

  async function writeJson(file: string, value: unknown): Promise<void> {
    const temporary = `${file}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, file);
  }

  /** The manifest digest a tag of the layout points to, from its index.json. */
  async function taggedDigest(tag: string): Promise<string | null> {
    const text = await readFile(path.join(layout, 'index.json'), 'utf8').catch(() => null);
    if (text === null) return null;
    const index = JSON.parse(text) as { manifests?: { digest: string; annotations?: Record<string, string> }[] };
    const found = index.manifests?.find((manifest) => manifest.annotations?.['org.opencontainers.image.ref.name'] === tag);
    return found !== undefined && isImageDigest(found.digest) ? found.digest : null;
  }

  /** The tree of `digest` when it is complete and its marker names that digest; null otherwise. */
  async function completeTree(digest: string): Promise<Marker | null> {
    const text = await readFile(path.join(treeDir(digest), MARKER), 'utf8').catch(() => null);
    if (text === null) return null;
    let marker: Marker;
    try {
      marker = JSON.parse(text) as Marker;
    } catch {
      return null;
    }
    if (marker.digest !== digest || !Array.isArray(marker.missingTools)) return null;
    for (const probe of TREE_PROBES) if ((await lstat(path.join(treeDir(digest), probe)).catch(() => null)) === null) return null;
    return marker;
  }

  async function sourceExists(parsed: ImageRef): Promise<void> {
    if (parsed.transport === 'host' || parsed.transport === 'docker') return;
    const found = await stat(parsed.path).catch(() => null);
    const wanted = parsed.transport === 'oci' ? found?.isDirectory() : found?.isFile();
    if (wanted !== true) {
      throw new NotFoundError('image_not_found', `There is no ${parsed.transport === 'oci' ? 'OCI layout directory' : 'archive file'} at ${parsed.path} (image ${parsed.ref}).`, {
        field: 'image',
      });
    }
  }

  /** Removes blobs no tag needs any more (a failed copy's, or a removed image's). */
  async function collectGarbage(): Promise<void> {
    if ((await stat(path.join(layout, 'index.json')).catch(() => null)) === null) return;
    await runTool(umoci, ['gc', '--layout', layout]);
  }

  /** Under the lock: copies the reference into the layout and records its digest. */
  async function copy(parsed: Exclude<ImageRef, { transport: 'host' }>, progress: ImageProgress): Promise<RefRecord> {
    const tag = `forgelink-${keyOf(parsed.ref)}`;
    progress(`Pulling ${parsed.ref}`);
    const result = await runTool(skopeo, ['copy', '--insecure-policy', '--remove-signatures', parsed.ref, `oci:${layout}:${tag}`], {
      onLine: progress,
      env: { HOME: dir, TMPDIR: dir, ...options.env },
    });
    if (result.code !== 0) {
      await collectGarbage().catch(() => {});
      const why = lastError(result);
      if (/manifest unknown|not found|no descriptor found|no such file|does not exist|name unknown|unauthorized/i.test(why)) {
        throw new NotFoundError('image_not_found', `Image ${parsed.ref} could not be found: ${why}`, { field: 'image' });
      }
      throw new ForgelinkError('image_pull_failed', `Pulling ${parsed.ref} failed: ${why}`);
    }
    const digest = await taggedDigest(tag);
    if (digest === null) throw new ForgelinkError('image_pull_failed', `skopeo copied ${parsed.ref} but the store names no digest for it.`);
    const record: RefRecord = { ref: parsed.ref, tag, digest, pulledAt: new Date().toISOString() };
    await writeJson(path.join(refsDir, `${keyOf(parsed.ref)}.json`), record);
    progress(`Pulled ${parsed.ref}: ${digest}`);
    return record;
  }

  /** Under the lock: unpacks the record's digest into its own tree unless a complete one is there. */
  async function unpack(record: RefRecord, progress: ImageProgress): Promise<Marker> {
    const existing = await completeTree(record.digest);
    if (existing !== null) return existing;
    const final = treeDir(record.digest);
    if ((await lstat(final).catch(() => null)) !== null) progress(`The unpacked tree of ${record.digest} is damaged or incomplete: unpacking it again`);
    await removeTree(final);
    // Leftovers of an unpack a crash cut short.
    for (const entry of await readdir(unpackedDir)) if (entry.startsWith('.tmp-')) await removeTree(path.join(unpackedDir, entry));
    if ((await taggedDigest(record.tag)) !== record.digest) {
      throw new ForgelinkError('image_damaged', `The image store no longer holds ${record.ref} (${record.digest}); pull it again with: forgelink images pull ${record.ref}`);
    }
    const temporary = path.join(unpackedDir, `.tmp-${record.digest.slice('sha256:'.length, 'sha256:'.length + 16)}-${process.pid}`);
    await mkdir(temporary, { mode: 0o700 });
    try {
      const started = Date.now();
      progress(`Unpacking ${record.ref} (${record.digest})`);
      const result = await runTool(umoci, ['raw', 'unpack', '--rootless', '--image', `${layout}:${record.tag}`, path.join(temporary, 'rootfs')], { onLine: progress });
      if (result.code !== 0) {
        throw new ForgelinkError('image_damaged', `Unpacking ${record.ref} failed: ${lastError(result)}. Pull it again with: forgelink images pull ${record.ref}`);
      }
      const marker: Marker = { digest: record.digest, unpackedAt: new Date().toISOString(), missingTools: await prepareRoot(path.join(temporary, 'rootfs')) };
      await writeJson(path.join(temporary, MARKER), marker);
      await rename(temporary, final);
      progress(`Unpacked ${record.ref} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return marker;
    } catch (error) {
      await removeTree(temporary);
      throw error;
    }
  }

  function usable(record: RefRecord, marker: Marker): ReadyImage {
    if (marker.missingTools.length > 0) {
      throw new InputError(
        'image_unusable',
        `Image ${record.ref} cannot hold a forgelink run: it lacks ${marker.missingTools.join(', ')}, which every sandbox needs (docs/architecture.md, "Run images").`,
        { field: 'image' },
      );
    }
    return { ref: record.ref, digest: record.digest, rootfs: path.join(treeDir(record.digest), 'rootfs') };
  }

  async function sizeOf(digest: string): Promise<number> {
    const text = await readFile(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)), 'utf8').catch(() => null);
    if (text === null) return 0;
    const manifest = JSON.parse(text) as { config?: { size?: number }; layers?: { size?: number }[] };
    return (manifest.config?.size ?? 0) + (manifest.layers ?? []).reduce((sum, layer) => sum + (layer.size ?? 0), 0);
  }

  function hostRefused(): InputError {
    return new InputError('invalid_image', '"host" is the host\'s own system, not an image to pull or remove.', { field: 'image' });
  }

  return {
    dir,

    /** Copies the reference into the store (again, when it was pulled before) and unpacks it. */
    async pull(ref: string, progress: ImageProgress = () => {}): Promise<StoredImage> {
      const parsed = parseImageRef(ref);
      if (parsed.transport === 'host') throw hostRefused();
      await sourceExists(parsed);
      return locked(async () => {
        const record = await copy(parsed, progress);
        usable(record, await unpack(record, progress));
        return { ref: record.ref, digest: record.digest, sizeBytes: await sizeOf(record.digest), pulledAt: record.pulledAt, unpacked: true };
      });
    },

    /** Throws NotFoundError (field `image`) when the image is neither in the store nor at its path; `host` passes. */
    async check(ref: string): Promise<void> {
      const parsed = parseImageRef(ref);
      if (parsed.transport === 'host' || (await readRecord(parsed.ref)) !== null) return;
      await sourceExists(parsed);
    },

    /**
     * A run's image, ready to bind: pulled on its first use, unpacked once per digest, checked at every use;
     * null for `host`.
     */
    async ready(ref: string, progress: ImageProgress = () => {}): Promise<ReadyImage | null> {
      const parsed = parseImageRef(ref);
      if (parsed.transport === 'host') return null;
      const record = await readRecord(parsed.ref);
      if (record !== null) {
        const marker = await completeTree(record.digest);
        if (marker !== null) return usable(record, marker);
      }
      const key = record?.digest ?? parsed.ref;
      const running = inFlight.get(key);
      if (running !== undefined) return running;
      const work = (async () => {
        if (record === null) await sourceExists(parsed);
        return locked(async () => {
          // Another process may have pulled or unpacked it while this one waited for the lock.
          const current = (await readRecord(parsed.ref)) ?? (await copy(parsed as Exclude<ImageRef, { transport: 'host' }>, progress));
          return usable(current, await unpack(current, progress));
        });
      })().finally(() => inFlight.delete(key));
      inFlight.set(key, work);
      return work;
    },

    async list(): Promise<StoredImage[]> {
      const images: StoredImage[] = [];
      for (const entry of await readdir(refsDir).catch(() => [] as string[])) {
        if (!entry.endsWith('.json')) continue;
        let record: RefRecord;
        try {
          record = JSON.parse(await readFile(path.join(refsDir, entry), 'utf8')) as RefRecord;
        } catch {
          continue;
        }
        images.push({
          ref: record.ref,
          digest: record.digest,
          sizeBytes: await sizeOf(record.digest),
          pulledAt: record.pulledAt,
          unpacked: (await completeTree(record.digest)) !== null,
        });
      }
      return images.sort((a, b) => a.ref.localeCompare(b.ref));
    },

    /** Forgets the reference; its blobs and unpacked tree go too unless another reference has the same digest. */
    async remove(ref: string): Promise<StoredImage> {
      const parsed = parseImageRef(ref);
      if (parsed.transport === 'host') throw hostRefused();
      return locked(async () => {
        const record = await readRecord(parsed.ref);
        if (record === null) throw new NotFoundError('image_not_found', `No image ${parsed.ref} in the store; forgelink images list shows what is there.`, { field: 'image' });
        const removed: StoredImage = {
          ref: record.ref,
          digest: record.digest,
          sizeBytes: await sizeOf(record.digest),
          pulledAt: record.pulledAt,
          unpacked: (await completeTree(record.digest)) !== null,
        };
        await rm(path.join(refsDir, `${keyOf(parsed.ref)}.json`), { force: true });
        const result = await runTool(umoci, ['rm', '--image', `${layout}:${record.tag}`]);
        if (result.code !== 0 && (await taggedDigest(record.tag)) !== null) {
          throw new ForgelinkError('image_remove_failed', `Removing ${record.ref} from the store failed: ${lastError(result)}`);
        }
        await collectGarbage();
        const others = await readdir(refsDir);
        let shared = false;
        for (const other of others) {
          const text = await readFile(path.join(refsDir, other), 'utf8').catch(() => '');
          if (text.includes(record.digest)) shared = true;
        }
        if (!shared) await removeTree(treeDir(record.digest));
        return removed;
      });
    },
  };
}

export type ImageStore = ReturnType<typeof createImageStore>;
