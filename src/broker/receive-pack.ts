/**
 * Reading the ref-update commands at the start of a `git-receive-pack` request body, as git's receive-pack reads
 * them (git's Documentation/gitprotocol-pack.adoc, "Reference Update Request and Packfile Transfer"):
 *
 *   *PKT-LINE("shallow" SP obj-id)  PKT-LINE(command NUL capabilities)  *PKT-LINE(command)  flush-pkt
 *   [ *PKT-LINE(push-option) flush-pkt ]   packfile
 *
 * A pkt-line is four hex digits of length (the four included) and the data; `0000` is the flush-pkt. A command is
 * `old-id SP new-id SP refname`, a trailing LF dropped; the zero id as old-id creates the ref, as new-id deletes it.
 * Push options follow only when the client asked for the `push-options` capability. Signed pushes (a `push-cert`
 * instead of the command list) are refused: GitLab does not advertise `push-cert`, so git never sends one to it.
 * The body must be the bytes git sent: a `Content-Encoding: gzip` body is inflated (or refused) by the caller first.
 */

/** One ref update as git asked for it; ids are lower-case hex (40 for SHA-1, 64 for SHA-256). */
export type RefUpdate = { oldId: string; newId: string; ref: string };

export type ReceivePackCommands = {
  /** False: the prefix ends before the commands (and push options) do; call again with more of the body. */
  complete: boolean;
  commands: RefUpdate[];
  capabilities: string[];
  /** The push options (`merge_request.create`, `ci.skip`…) when the client sent them. */
  pushOptions: string[];
  /** Object ids of `shallow` lines (a push from a shallow clone). */
  shallow: string[];
  /** When complete: how many bytes of the body the commands and push options took; the packfile starts there. */
  length: number;
  /** Set when the body is not a command list receive-pack would accept the way it is read here; refuse the push. */
  error: string | null;
};

/**
 * How much of a body the commands may take before the parser gives up: far beyond any real push (a command is
 * about 100 bytes), small enough that a proxy may hold it in memory.
 */
export const RECEIVE_PACK_COMMANDS_LIMIT = 4 * 1024 * 1024;

const decoder = new TextDecoder('utf-8', { fatal: true });

type Packet = { kind: 'flush' } | { kind: 'data'; data: Uint8Array } | { kind: 'incomplete' } | { kind: 'error'; error: string };

function readPacket(bytes: Uint8Array, offset: number): { packet: Packet; next: number } {
  if (bytes.length - offset < 4) return { packet: { kind: 'incomplete' }, next: offset };
  const head = String.fromCharCode(bytes[offset] ?? 0, bytes[offset + 1] ?? 0, bytes[offset + 2] ?? 0, bytes[offset + 3] ?? 0);
  if (!/^[0-9a-fA-F]{4}$/.test(head)) return { packet: { kind: 'error', error: `bad pkt-line length "${printable(head)}" at byte ${offset}` }, next: offset };
  const length = Number.parseInt(head, 16);
  if (length === 0) return { packet: { kind: 'flush' }, next: offset + 4 };
  // 0001 (delim) and 0002 (response end) belong to protocol v2, which push does not use; 0003 is never valid.
  if (length < 4) return { packet: { kind: 'error', error: `unexpected special packet ${head} at byte ${offset}` }, next: offset };
  if (length === 4) return { packet: { kind: 'error', error: `empty pkt-line at byte ${offset}` }, next: offset };
  if (bytes.length - offset < length) return { packet: { kind: 'incomplete' }, next: offset };
  return { packet: { kind: 'data', data: bytes.subarray(offset + 4, offset + length) }, next: offset + length };
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

function text(data: Uint8Array): string | null {
  try {
    return decoder.decode(data);
  } catch {
    return null;
  }
}

/**
 * git's check_refname_format, in short: no control characters, space, `~^:?*[\`, `..`, `@{`, empty components or
 * components that start with `.` or end with `.lock`, and no trailing `/` or `.`; `@` alone is not a name.
 * Receive-pack refuses such names ("funny refname"); refusing them here keeps the rules from judging a name GitLab
 * would read differently.
 */
export function refnameProblem(ref: string): string | null {
  if (ref === '' || ref === '@') return 'is empty or "@"';
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(ref)) return 'contains a space, a control character or one of ~^:?*[\\';
  if (ref.includes('..') || ref.includes('@{')) return 'contains ".." or "@{"';
  if (ref.endsWith('.') || ref.endsWith('/')) return 'ends with "." or "/"';
  for (const component of ref.split('/')) {
    if (component === '') return 'has an empty path component';
    if (component.startsWith('.')) return 'has a component starting with "."';
    if (component.endsWith('.lock')) return 'has a component ending with ".lock"';
  }
  return null;
}

/** Parses the ref-update commands at the start of a receive-pack request body (see the file's comment). */
export function parseReceivePackCommands(prefix: Uint8Array): ReceivePackCommands {
  const result: ReceivePackCommands = { complete: false, commands: [], capabilities: [], pushOptions: [], shallow: [], length: 0, error: null };
  const fail = (error: string): ReceivePackCommands => ({ ...result, complete: true, error });
  const incomplete = (): ReceivePackCommands =>
    prefix.length > RECEIVE_PACK_COMMANDS_LIMIT
      ? fail(`the ref-update commands do not end within ${RECEIVE_PACK_COMMANDS_LIMIT} bytes`)
      : { ...result, complete: false };

  let offset = 0;
  let idLength: number | null = null;
  for (;;) {
    const { packet, next } = readPacket(prefix, offset);
    if (packet.kind === 'incomplete') return incomplete();
    if (packet.kind === 'error') return fail(packet.error);
    offset = next;
    if (packet.kind === 'flush') break;

    let line = text(packet.data);
    if (line === null) return fail('a command line is not valid UTF-8');
    if (line.endsWith('\n')) line = line.slice(0, -1);
    const nul = line.indexOf('\0');
    const command = nul === -1 ? line : line.slice(0, nul);
    if (nul !== -1) {
      // receive-pack reads capabilities after a NUL on any line, not only the first.
      for (const capability of line.slice(nul + 1).split(' ')) {
        if (capability !== '' && !result.capabilities.includes(capability)) result.capabilities.push(capability);
      }
    }
    if (command === 'push-cert') return fail('signed pushes (push certificates) are not supported through forgelink');
    const shallow = /^shallow ([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/.exec(command);
    if (shallow?.[1] !== undefined) {
      result.shallow.push(shallow[1].toLowerCase());
      continue;
    }
    const match = /^([0-9a-fA-F]{40}|[0-9a-fA-F]{64}) ([0-9a-fA-F]{40}|[0-9a-fA-F]{64}) (.*)$/s.exec(command);
    if (match === null || match[1] === undefined || match[2] === undefined || match[3] === undefined) {
      return fail(`expected "<old-id> <new-id> <ref>", got "${printable(command.slice(0, 120))}"`);
    }
    if (match[1].length !== match[2].length || (idLength !== null && idLength !== match[1].length)) {
      return fail('object ids of different lengths in one push');
    }
    idLength = match[1].length;
    const problem = refnameProblem(match[3]);
    if (problem !== null) return fail(`the ref name "${printable(match[3].slice(0, 120))}" ${problem}`);
    result.commands.push({ oldId: match[1].toLowerCase(), newId: match[2].toLowerCase(), ref: match[3] });
  }

  const format = result.capabilities.find((capability) => capability.startsWith('object-format='))?.slice('object-format='.length) ?? 'sha1';
  const expected = format === 'sha1' ? 40 : format === 'sha256' ? 64 : null;
  if (expected === null) return fail(`unsupported object format "${printable(format)}"`);
  if (idLength !== null && idLength !== expected) return fail(`object ids are not ${format} ids (${expected} hex digits)`);
  for (const id of result.shallow) {
    if (id.length !== expected) return fail(`a shallow line's id is not a ${format} id`);
  }

  if (result.capabilities.includes('push-options')) {
    for (;;) {
      const { packet, next } = readPacket(prefix, offset);
      if (packet.kind === 'incomplete') return incomplete();
      if (packet.kind === 'error') return fail(packet.error);
      offset = next;
      if (packet.kind === 'flush') break;
      const option = text(packet.data);
      if (option === null) return fail('a push option is not valid UTF-8');
      result.pushOptions.push(option.endsWith('\n') ? option.slice(0, -1) : option);
    }
  }
  return { ...result, complete: true, length: offset };
}

/** The all-zero id of either length: as old-id it creates a ref, as new-id it deletes one. */
export function isZeroId(id: string): boolean {
  return /^0+$/.test(id);
}
