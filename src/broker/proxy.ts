import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, Readable } from 'node:stream';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect, rootCertificates, type SecureContext } from 'node:tls';
import { brotliDecompressSync, createGunzip, gunzipSync, inflateSync } from 'node:zlib';
import { buildConnector, errors as undiciErrors, Pool, type Dispatcher } from 'undici';
import { HOP_BY_HOP_HEADERS, type BrokeredTarget, type SandboxBroker } from '../core/index.ts';
import type { RunCa } from './ca.ts';
import { parseReceivePackCommands, type ReceivePackCommands } from './receive-pack.ts';

/** One credential the broker puts in place of its surrogate. */
export type BrokeredCredential = {
  /** The variable the sandbox holds the surrogate in (`GITLAB_TOKEN`, `ANTHROPIC_API_KEY`), for records. */
  name: string;
  surrogate: string;
  /** The origins (`host:port`) the real value may be sent to; toward any other the surrogate stays as it is. */
  origins: readonly string[];
  /** The real value now: for an OAuth connection the provider's current access token, refreshed when due. */
  real: () => Promise<string>;
  /** An OAuth access token: GitLab takes it as `Authorization: Bearer` (or `access_token`), not as PRIVATE-TOKEN. */
  oauth?: boolean;
};

/** What the run's policy sees of one request to the GitLab origin, before anything is sent upstream. */
export type GuardRequest = {
  method: string;
  /** The path as sent, without the query (percent-encoding kept: `projects/acme%2Fapp` stays one segment). */
  path: string;
  query: URLSearchParams;
  contentType: string;
  /** For `POST …/git-receive-pack`: its ref-update commands and push options, read before anything went upstream. */
  receivePack?: ReceivePackCommands;
  /** For any other write: the body as sent (up to 16 MiB). */
  body?: Buffer;
};

export type GuardDecision = { allow: true } | { allow: false; rule: string; message: string };

/**
 * What the broker did with one write, with any request it refused, and with any request the upstream left unanswered
 * (`message` says why; docs/security.md, "Credential broker").
 */
export type BrokerRecord = {
  at: string;
  method: string;
  /** `origin` and path, never the query (it may hold a credential). */
  target: string;
  /** For a push: the refs it updates, `old new ref` each. */
  refs?: string[];
  allowed: boolean;
  rule: string | null;
  message: string | null;
  status: number | null;
  /**
   * For a POST answered 201 whose (small, JSON) answer names an `iid`: that iid, the object the write created (an
   * issue or a merge request when the path says so). Answers streamed through (over 256 KiB or of unknown length) have none.
   */
  createdIid?: number;
};

export type BrokerOptions = {
  ca: RunCa;
  credentials: readonly BrokeredCredential[];
  /** Origins whose traffic is brokered: those of the credentials, each with the private CA (PEM) its certificates chain to, if any. */
  origins: ReadonlyMap<string, { caPem: string | null; policy: boolean }>;
  /** The run's policy, asked before each request to an origin marked `policy` goes upstream. */
  guard?: (request: GuardRequest) => GuardDecision | Promise<GuardDecision>;
  onRecord?: (record: BrokerRecord) => void;
  now?: () => Date;
  /** Until an upstream connection is up, TLS handshake included (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * How long a request waits for the upstream's answer (its status line and headers) before the sandbox gets 504:
   * `api` for the GitLab origin's REST, GraphQL and other non-git requests (default 90 s: GitLab itself ends an API
   * request after 60 s), `long` for git over smart HTTP (a push is answered once GitLab has checked it) and for every
   * other brokered origin, such as a model API (default 300 s).
   */
  answerTimeoutMs?: { api?: number; long?: number };
};

// The request upstream is the broker's own: the sandbox's `expect` and `host` are not forwarded either.
const HOP_BY_HOP = new Set([...HOP_BY_HOP_HEADERS, 'expect', 'host']);
/** The most of a request body the broker reads before deciding: a push's ref list, a REST write. */
const MAX_INSPECTED_BYTES = 16 * 1024 * 1024;
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Answers up to this size (by their Content-Length) are read whole and sent back in one write. */
const SMALL_BODY_BYTES = 256 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
const API_ANSWER_TIMEOUT_MS = 90_000;
const LONG_ANSWER_TIMEOUT_MS = 300_000;
const GIT_PATH = /\/git-(receive|upload)-pack$|\/info\/refs$/;

class RefusedError extends Error {
  readonly status: number;
  readonly rule: string;
  constructor(status: number, rule: string, message: string) {
    super(message);
    this.status = status;
    this.rule = rule;
  }
}

/**
 * The credential broker of one run. The egress proxy hands it each request to a brokered origin (TLS already
 * terminated with the run's CA); it puts the real credential where the sandbox put a surrogate, asks the run's
 * policy (GitLab origin only), and forwards the request over a new, verified connection to the address the proxy
 * checked. Surrogates it does not know, and credentials the agent brought itself, pass unchanged.
 */
/** A run's broker as the sandbox's proxy uses it, and what the run asks of it once its agent has ended. */
export type Broker = SandboxBroker & {
  /**
   * Forwards nothing from now on (a later request is refused: the run has ended) and tells how many writes it
   * forwarded to any origin: none means the sandbox changed nothing upstream.
   */
  seal(): { writes: number };
};

export function createBroker(options: BrokerOptions): Broker {
  const now = options.now ?? (() => new Date());
  const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const apiAnswerTimeoutMs = options.answerTimeoutMs?.api ?? API_ANSWER_TIMEOUT_MS;
  const longAnswerTimeoutMs = options.answerTimeoutMs?.long ?? LONG_ANSWER_TIMEOUT_MS;
  const pools = new Map<string, Pool>();
  let closed = false;
  let sealed = false;
  let forwardedWrites = 0;

  function poolFor(target: BrokeredTarget): Pool {
    const key = `${target.tls ? 'https' : 'http'}|${target.origin}|${target.address}`;
    let pool = pools.get(key);
    if (pool === undefined) {
      const caPem = options.origins.get(target.origin)?.caPem ?? null;
      const connector = buildConnector({
        timeout: connectTimeoutMs,
        ...(caPem === null ? {} : { ca: [...rootCertificates, caPem] }),
      });
      // The connection goes to the checked address, while TLS verifies the certificate against the origin's name.
      const address = target.address;
      const open = target.connect;
      const host = target.origin.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      const secure = target.tls;
      pool = new Pool(`${target.tls ? 'https' : 'http'}://${target.origin}`, {
        connect: (opts, callback) => {
          if (open === undefined) return connector({ ...opts, hostname: address }, callback);
          // The egress proxy's own way out (directly, or through the operator's upstream proxy), TLS on top. undici's
          // connect timeout applies only to its own connector, so this one has its own deadline, handshake included:
          // an upstream that accepts the connection and never answers the handshake must not hold the request forever.
          let settled = false;
          let socket: Socket | null = null;
          const settle = (error: Error | null, ready: Socket | null) => {
            if (settled) return;
            settled = true;
            clearTimeout(deadline);
            if (error !== null || ready === null) {
              socket?.destroy();
              return callback(error ?? new Error('no connection'), null);
            }
            callback(null, ready);
          };
          const deadline = setTimeout(
            () => settle(new undiciErrors.ConnectTimeoutError(`no connection to ${target.origin} within ${seconds(connectTimeoutMs)}`), null),
            connectTimeoutMs,
          );
          open().then(
            (raw) => {
              socket = raw as Socket;
              if (settled) return void socket.destroy();
              if (!secure) return settle(null, socket);
              const tls = tlsConnect({
                socket: raw,
                host,
                ...(isIP(host) === 0 ? { servername: host } : {}),
                ...(caPem === null ? {} : { ca: [...rootCertificates, caPem] }),
                ALPNProtocols: ['http/1.1'],
              });
              socket = tls;
              const failed = (error: Error) => settle(error, null);
              tls.on('error', failed);
              tls.once('secureConnect', () => {
                tls.off('error', failed);
                settle(null, tls);
              });
            },
            (error: Error) => settle(error, null),
          );
        },
        connections: 16,
        keepAliveTimeout: 30_000,
        headersTimeout: LONG_ANSWER_TIMEOUT_MS,
        bodyTimeout: LONG_ANSWER_TIMEOUT_MS,
      });
      pools.set(key, pool);
    }
    return pool;
  }

  function credentialsFor(origin: string): BrokeredCredential[] {
    return options.credentials.filter((credential) => credential.origins.includes(origin));
  }

  /** Headers and query with every surrogate bound to this origin replaced by its real value. */
  async function swap(headers: IncomingHttpHeaders, query: URLSearchParams, origin: string): Promise<Record<string, string | string[]>> {
    const out: Record<string, string | string[]> = {};
    const dropped = new Set(HOP_BY_HOP);
    for (const token of String(headers.connection ?? '').split(',')) dropped.add(token.trim().toLowerCase());
    for (const [key, value] of Object.entries(headers)) {
      if (value !== undefined && !dropped.has(key)) out[key] = value;
    }
    const credentials = credentialsFor(origin);
    if (credentials.length === 0) return out;
    const find = (value: string | undefined) => (value === undefined ? undefined : credentials.find((credential) => credential.surrogate === value));
    const single = (name: string) => {
      const value = out[name];
      return Array.isArray(value) ? value[0] : value;
    };

    const authorization = single('authorization');
    if (authorization !== undefined) {
      const [scheme = '', rest = ''] = authorization.split(/ +(.*)/s);
      if (/^bearer$/i.test(scheme)) {
        const credential = find(rest.trim());
        if (credential) out.authorization = `Bearer ${await credential.real()}`;
      } else if (/^basic$/i.test(scheme)) {
        const decoded = Buffer.from(rest.trim(), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        const user = colon < 0 ? decoded : decoded.slice(0, colon);
        const password = colon < 0 ? '' : decoded.slice(colon + 1);
        const byPassword = find(password);
        const byUser = find(user);
        if (byPassword || byUser) {
          const realUser = byUser ? await byUser.real() : user;
          const realPassword = byPassword ? await byPassword.real() : password;
          out.authorization = `Basic ${Buffer.from(`${realUser}:${realPassword}`, 'utf8').toString('base64')}`;
        }
      }
    }
    for (const header of ['private-token', 'x-api-key']) {
      const credential = find(single(header)?.trim());
      if (credential === undefined) continue;
      if (credential.oauth) {
        delete out[header];
        out.authorization = `Bearer ${await credential.real()}`;
      } else {
        out[header] = await credential.real();
      }
    }
    for (const parameter of ['private_token', 'access_token']) {
      const credential = find(query.get(parameter) ?? undefined);
      if (credential === undefined) continue;
      query.delete(parameter);
      query.set(credential.oauth ? 'access_token' : parameter, await credential.real());
    }
    return out;
  }

  /** Reads the start of a body: all of it up to `limit` bytes, or (for a push) through the command list's flush packet. */
  async function readHead(body: AsyncIterator<Buffer>, until: (collected: Buffer) => boolean): Promise<{ head: Buffer; done: boolean }> {
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const next = await body.next();
      if (next.done) return { head: Buffer.concat(chunks), done: true };
      chunks.push(next.value);
      size += next.value.length;
      const collected = Buffer.concat(chunks);
      if (until(collected)) return { head: collected, done: false };
      if (size > MAX_INSPECTED_BYTES) throw new RefusedError(413, 'body_too_large', `forgelink: the request body is larger than the ${MAX_INSPECTED_BYTES / 1024 / 1024} MiB the run's policy reads before deciding.`);
      chunks.length = 0;
      chunks.push(collected);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, target: BrokeredTarget): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://broker.invalid');
    // An absolute-form request (plain http through the proxy) carries the origin in its URL; only its path counts here.
    const rawPath = (req.url ?? '/').replace(/^[a-z]+:\/\/[^/]*/i, '').split('?')[0] || '/';
    const query = url.searchParams;
    const origin = options.origins.get(target.origin);
    const record = (fields: Omit<BrokerRecord, 'at' | 'method' | 'target'>) =>
      options.onRecord?.({ at: now().toISOString(), method, target: `${target.origin}${rawPath}`, ...fields });
    const refuse = (status: number, rule: string, message: string, refs?: string[]) => {
      record({ allowed: false, rule, message, status, ...(refs ? { refs } : {}) });
      req.resume();
      answerWith(res, rawPath, status, message);
    };
    if (closed) return refuse(503, 'run_ended', 'forgelink: this run has ended.');

    // The policy sees the query as the sandbox sent it; the swap below puts real credentials into `query`.
    const sentQuery = new URLSearchParams(query);
    let headers: Record<string, string | string[]>;
    try {
      headers = await swap(req.headers, query, target.origin);
    } catch {
      return refuse(502, 'credential_unavailable', 'forgelink: the run\'s credential for this host could not be obtained right now; the run log says why.');
    }

    let body: AsyncIterable<Buffer> | null = READS.has(method) ? null : (req as AsyncIterable<Buffer>);
    let refs: string[] | undefined;
    // The GitLab origin: a push's ref updates are read (for the record and the policy) and the policy asked before anything goes upstream.
    if (origin?.policy) {
      const guardRequest: GuardRequest = { method, path: rawPath, query: sentQuery, contentType: String(req.headers['content-type'] ?? '') };
      let capabilities: string[] = [];
      try {
        if (method === 'POST' && rawPath.endsWith('/git-receive-pack')) {
          let source: AsyncIterable<Buffer> = req;
          if (/gzip/i.test(String(req.headers['content-encoding'] ?? ''))) {
            // The commands are read from the inflated body, which then goes upstream as it is, unencoded.
            source = req.pipe(createGunzip());
            delete headers['content-encoding'];
            delete headers['content-length'];
          }
          const iterator = source[Symbol.asyncIterator]();
          const { head, done } = await readHead(iterator, (collected) => parseReceivePackCommands(collected).complete);
          const parsed = parseReceivePackCommands(head);
          guardRequest.receivePack = parsed;
          capabilities = parsed.capabilities;
          refs = parsed.commands.map((update) => `${update.oldId} ${update.newId} ${update.ref}`);
          body = prefixed(head, done ? null : iterator);
        } else if (options.guard && !READS.has(method)) {
          // A REST, GraphQL (or any other) write: its fields decide (a commit's branch, a mutation), so the body is read first.
          const iterator = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
          const { head } = await readHead(iterator, () => false);
          guardRequest.body = head;
          body = prefixed(head, null);
        }
      } catch (error) {
        if (error instanceof RefusedError) return refuse(error.status, error.rule, error.message, refs);
        throw error;
      }
      const decision = options.guard ? await options.guard(guardRequest) : { allow: true as const };
      if (!decision.allow) {
        if (guardRequest.receivePack !== undefined && guardRequest.receivePack.commands.length > 0 && capabilities.some((c) => c === 'report-status' || c === 'report-status-v2')) {
          // git prints a report-status rejection per ref: `! [remote rejected] main -> main (forgelink policy (…): …)`.
          record({ allowed: false, rule: decision.rule, message: decision.message, status: 200, ...(refs ? { refs } : {}) });
          req.resume();
          const result = receivePackRefusal(guardRequest.receivePack.commands.map((update) => update.ref), decision.message, capabilities);
          res.writeHead(200, { 'content-type': 'application/x-git-receive-pack-result', 'content-length': result.length, 'cache-control': 'no-cache' });
          res.end(result);
          return;
        }
        return refuse(403, decision.rule, decision.message, refs);
      }
    }

    const search = query.toString();
    const path = `${rawPath}${search === '' ? '' : `?${search}`}`;
    const write = !READS.has(method) && !(method === 'POST' && /\/git-upload-pack$/.test(rawPath));
    // GitLab ends an API request itself after a minute; git and the other origins (model APIs) may take minutes.
    const answerTimeoutMs = origin?.policy && !GIT_PATH.test(rawPath) ? apiAnswerTimeoutMs : longAnswerTimeoutMs;
    // The sandbox may give up first (its client's timeout, the agent killed): the upstream request is cut then too, so it
    // does not hold one of the pool's connections until its own timeout.
    const gone = new AbortController();
    const onGone = () => {
      if (!res.writableFinished) gone.abort();
    };
    res.once('close', onGone);
    // Checked and counted in one turn, right before the request goes upstream: once sealed, nothing more leaves.
    if (sealed) {
      res.off('close', onGone);
      return refuse(503, 'run_ended', 'forgelink: this run has ended.');
    }
    if (write) forwardedWrites += 1;
    let answer: Dispatcher.ResponseData;
    try {
      answer = await poolFor(target).request({
        method: method as Dispatcher.HttpMethod,
        path,
        headers,
        body: body === null ? null : body === req ? req : Readable.from(body),
        headersTimeout: answerTimeoutMs,
        signal: gone.signal,
      });
    } catch (error) {
      res.off('close', onGone);
      const failure = upstreamFailure(error, target.origin, method, rawPath, answerTimeoutMs, connectTimeoutMs, gone.signal.aborted);
      // A write is recorded either way; a read only when it failed, so the run shows every request left unanswered.
      record({ allowed: true, rule: null, message: failure.message, status: failure.status, ...(refs ? { refs } : {}) });
      if (failure.status === null || res.destroyed || res.headersSent) return void res.destroy();
      answerWith(res, rawPath, failure.status, failure.message);
      return;
    }
    res.off('close', onGone);
    // From here on the answer's body follows the sandbox's connection: pipeline and arrayBuffer end with it.
    res.once('close', () => {
      if (!res.writableFinished) answer.body.destroy();
    });
    const recordWrite = (createdIid: number | null) => {
      if (write) record({ allowed: true, rule: null, message: null, status: answer.statusCode, ...(refs ? { refs } : {}), ...(createdIid === null ? {} : { createdIid }) });
    };
    const out: Record<string, string | string[]> = {};
    for (const [key, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(key)) out[key] = value;
    }
    const length = Number(answer.headers['content-length'] ?? Number.NaN);
    if (length <= SMALL_BODY_BYTES) {
      // A small answer (most API responses) goes back in one write: headers and body split over two small TLS records
      // would wait on the sandbox side's delayed ACK (Nagle at the bridge) for each request.
      let data: Buffer;
      try {
        data = Buffer.from(await answer.body.arrayBuffer());
      } catch {
        recordWrite(null);
        res.destroy();
        return;
      }
      // Recorded before the sandbox has the answer, so the run's outputs can rely on it once the agent has ended.
      recordWrite(write && method === 'POST' && answer.statusCode === 201 && !GIT_PATH.test(rawPath) ? createdIidOf(data, answer.headers['content-encoding']) : null);
      res.writeHead(answer.statusCode, out);
      res.end(data);
      return;
    }
    recordWrite(null);
    res.writeHead(answer.statusCode, out);
    pipeline(answer.body, res, () => {});
  }

  return {
    brokers: (origin) => options.origins.has(origin),
    tlsContext: (host): Promise<SecureContext> => options.ca.contextFor(host),
    handle,
    seal() {
      sealed = true;
      return { writes: forwardedWrites };
    },
    async close() {
      closed = true;
      await Promise.allSettled([...pools.values()].map((pool) => pool.destroy()));
      pools.clear();
    },
  };
}

/** The broker's own answer to a request: plain text that git prints for git's paths, GitLab's `{"message": …}` elsewhere. */
function answerWith(res: ServerResponse, rawPath: string, status: number, message: string): void {
  const git = GIT_PATH.test(rawPath);
  const body = git ? `${message}\n` : `${JSON.stringify({ message })}\n`;
  res.writeHead(status, { 'content-type': git ? 'text/plain; charset=utf-8' : 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** The `iid` of a small JSON answer (as GitLab answers a created issue or merge request), decoded first if compressed; null otherwise. */
function createdIidOf(data: Buffer, encoding: string | string[] | undefined): number | null {
  try {
    const coding = String(encoding ?? '').trim().toLowerCase();
    const limit = { maxOutputLength: 4 * SMALL_BODY_BYTES };
    const text = (coding === 'gzip' || coding === 'x-gzip' ? gunzipSync(data, limit) : coding === 'deflate' ? inflateSync(data, limit) : coding === 'br' ? brotliDecompressSync(data, limit) : coding === '' || coding === 'identity' ? data : null)?.toString('utf8');
    if (text === undefined) return null;
    const iid = (JSON.parse(text) as { iid?: unknown } | null)?.iid;
    return typeof iid === 'number' && Number.isSafeInteger(iid) && iid > 0 ? iid : null;
  } catch {
    return null;
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * What the sandbox is told when the upstream gave no answer: 504 when it did not answer in time, 502 when it could not
 * be reached; `status` null when the sandbox itself went away first (nobody to tell). A write that timed out may have
 * been carried out all the same, which the message says, so the agent looks before sending it again.
 */
function upstreamFailure(
  error: unknown,
  origin: string,
  method: string,
  path: string,
  answerTimeoutMs: number,
  connectTimeoutMs: number,
  sandboxGone: boolean,
): { status: number | null; message: string } {
  const code = (error as { code?: unknown } | null)?.code;
  if (sandboxGone) return { status: null, message: `forgelink: the sandbox closed the connection before ${origin} answered ${method} ${path}.` };
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    const maybe = READS.has(method) ? '' : ' It may have been carried out there all the same: look before sending it again.';
    return { status: 504, message: `forgelink: ${origin} did not answer ${method} ${path} within ${seconds(answerTimeoutMs)}.${maybe}` };
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { status: 502, message: `forgelink: ${origin} could not be reached (no connection within ${seconds(connectTimeoutMs)}).` };
  const reason = typeof code === 'string' ? ` (${code})` : '';
  return { status: 502, message: `forgelink: ${origin} could not be reached${reason}.` };
}

async function* prefixed(head: Buffer, rest: AsyncIterator<Buffer> | null): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  if (rest === null) return;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

/**
 * A receive-pack result refusing every ref of a push (gitprotocol-pack, "report-status"): the pack is never
 * unpacked, each ref is `ng` with the policy's message, which git shows as `! [remote rejected] <ref> (<message>)`.
 * With side-band-64k the report travels on band 1, and the message also goes to band 2, which git prints as `remote:`.
 */
export function receivePackRefusal(refs: readonly string[], message: string, capabilities: readonly string[]): Buffer {
  const oneLine = message.replace(/[\r\n]+/g, ' ');
  const report = Buffer.concat([
    pktLine('unpack ok\n'),
    ...refs.map((ref) => pktLine(`ng ${ref} ${oneLine}\n`)),
    Buffer.from('0000'),
  ]);
  if (!capabilities.includes('side-band-64k') && !capabilities.includes('side-band')) return report;
  const max = capabilities.includes('side-band-64k') ? 65515 : 995;
  const bands: Buffer[] = [pktLine(Buffer.concat([Buffer.from([2]), Buffer.from(`${oneLine}\n`)]))];
  for (let offset = 0; offset < report.length; offset += max) {
    bands.push(pktLine(Buffer.concat([Buffer.from([1]), report.subarray(offset, offset + max)])));
  }
  bands.push(Buffer.from('0000'));
  return Buffer.concat(bands);
}

function pktLine(data: string | Buffer): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return Buffer.concat([Buffer.from((bytes.length + 4).toString(16).padStart(4, '0')), bytes]);
}
