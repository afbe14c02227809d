import {
  NotFoundError,
  UpstreamError,
  checkOutboundAddress,
  hostInterfaceAddresses,
  originOfBaseUrl,
  tokenState,
  type Clock,
  type Connection,
  type ConnectionStore,
  type GitLabClientFactory,
  type OutboundPolicy,
} from '../core/index.ts';
import { GitLabHttp, answersLikeGitLab, checkTls, resolveName, tcpConnect, type RawResponse } from '../gitlab/index.ts';
import { DoctorMetadata, DoctorProjects } from './schema.ts';

/** One diagnosis step: passes, warns or fails with a sentence a user can act on; skipped when an earlier step failed. */
export type DoctorStep = {
  id: 'dns' | 'address' | 'tcp' | 'tls' | 'gitlab' | 'subpath' | 'token' | 'encoded_path' | 'clone_url' | 'egress' | 'clock';
  title: string;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  message: string;
};

export type DoctorReport = { connectionId: string; baseUrl: string; checkedAt: string; ok: boolean; steps: DoctorStep[] };

export type DoctorDeps = {
  policy: OutboundPolicy;
  gitlab: GitLabClientFactory;
  clock: Clock;
  /** Origins every run may reach besides its GitLab (FORGELINK_RUN_EXTRA_HOSTS). */
  runExtraHosts: readonly string[];
  timeoutMs?: number;
};

const TITLES: Record<DoctorStep['id'], string> = {
  dns: 'Name resolution',
  address: 'Outbound address policy',
  tcp: 'TCP connection',
  tls: 'TLS certificate',
  gitlab: 'GitLab API',
  subpath: 'Subpath',
  token: 'Token',
  encoded_path: 'Encoded project paths (%2F)',
  clone_url: 'Clone URL',
  egress: 'Run sandbox allowlist',
  clock: 'Clock',
};

const CLOCK_WARN_MS = 30_000;
const CLOCK_FAIL_MS = 5 * 60_000;

/**
 * Says, step by step, why a connection does or does not work: DNS, the outbound policy, TCP, TLS (and which
 * CA would fix it), whether GitLab answers there and under which subpath, the token, whether a reverse
 * proxy decodes `%2F`, whether GitLab's clone URLs match the base URL, whether runs' allowlist covers them,
 * and the clock offset. `token` is the connection's current token, or null when it cannot be had.
 */
export async function diagnose(deps: DoctorDeps, connection: Connection, token: string | null): Promise<DoctorReport> {
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const steps: DoctorStep[] = [];
  const add = (id: DoctorStep['id'], status: DoctorStep['status'], message: string) => {
    steps.push({ id, title: TITLES[id], status, message });
    return status;
  };
  const skipRest = (ids: DoctorStep['id'][], reason: string) => {
    for (const id of ids) add(id, 'skip', reason);
  };
  const report = (): DoctorReport => ({
    connectionId: connection.id,
    baseUrl: connection.baseUrl,
    checkedAt: deps.clock.now().toISOString(),
    ok: !steps.some((step) => step.status === 'fail'),
    steps,
  });

  const base = new URL(connection.baseUrl);
  const hostname = base.hostname.replace(/^\[|\]$/g, '');
  const port = Number(base.port || (base.protocol === 'https:' ? 443 : 80));

  const resolved = await resolveName(hostname);
  if ('error' in resolved) {
    add('dns', 'fail', `${hostname} does not resolve (${resolved.error}). Check the name in the URL, and that this server's DNS knows it.`);
    skipRest(['address', 'tcp', 'tls', 'gitlab', 'subpath', 'token', 'encoded_path', 'clone_url', 'egress', 'clock'], 'needs name resolution');
    return report();
  }
  add('dns', 'pass', `${hostname} resolves to ${resolved.addresses.join(', ')}.`);

  const own = hostInterfaceAddresses();
  const verdicts = resolved.addresses.map((address) => ({ address, verdict: checkOutboundAddress(hostname, address, deps.policy, own) }));
  const usable = verdicts.filter((entry) => entry.verdict.allowed).map((entry) => entry.address);
  const refused = verdicts.find((entry) => !entry.verdict.allowed);
  if (usable.length === 0 || usable[0] === undefined) {
    add('address', 'fail', refused && !refused.verdict.allowed ? refused.verdict.reason : `No address of ${hostname} may be contacted.`);
    skipRest(['tcp', 'tls', 'gitlab', 'subpath', 'token', 'encoded_path', 'clone_url', 'egress', 'clock'], 'needs an allowed address');
    return report();
  }
  add('address', 'pass', `${usable.join(', ')} may be contacted under the outbound policy.`);
  const address = usable[0];

  const tcp = await tcpConnect(address, port, timeoutMs, deps.policy.upstreamProxy ?? null);
  if ('error' in tcp) {
    add('tcp', 'fail', `Nothing answers on ${address} port ${port} (${tcp.error}). Check the port in the URL, and firewalls between this server and GitLab.`);
    skipRest(['tls', 'gitlab', 'subpath', 'token', 'encoded_path', 'clone_url', 'egress', 'clock'], 'needs a TCP connection');
    return report();
  }
  add('tcp', 'pass', `${address} port ${port} accepts connections (${tcp.ms} ms).`);

  if (base.protocol === 'https:') {
    const tlsReport = await checkTls({ address, port, servername: hostname, caPem: connection.caPem, timeoutMs, proxy: deps.policy.upstreamProxy ?? null });
    if (!tlsReport.ok) {
      const top = tlsReport.chain.at(-1);
      const notTls = tlsReport.chain.length === 0 && /WRONG_VERSION_NUMBER|EPROTO|ECONNRESET|packet length too long/i.test(tlsReport.code);
      if (notTls) {
        add('tls', 'fail', `${hostname} port ${port} does not answer TLS (${tlsReport.code}): the instance may be plain http://, or the port may belong to something else. Check the scheme and port of the URL.`);
        skipRest(['gitlab', 'subpath', 'token', 'encoded_path', 'clone_url', 'egress', 'clock'], 'needs a TLS connection');
        return report();
      }
      const fix =
        tlsReport.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? `The certificate is not issued for ${hostname}: use the name it is issued for (${tlsReport.chain[0]?.subject ?? 'see the certificate'}).`
          : tlsReport.code === 'CERT_HAS_EXPIRED'
            ? `The certificate expired (${tlsReport.chain[0]?.validTo ?? 'date unknown'}): GitLab's administrator must renew it.`
            : top
              ? `The chain the server presents ends at "${top.subject}", issued by "${top.issuer}": connect again with the certificate of "${top.issuer}" as the CA certificate (CLI: --ca-file; dashboard: the CA certificate field)${connection.caPem ? ' — the CA given with this connection is not it' : ''}.`
              : 'Connect again with the certificate of the authority that issued the server certificate as the CA certificate (CLI: --ca-file; dashboard: the CA certificate field).';
      add('tls', 'fail', `The certificate of ${hostname} cannot be verified (${tlsReport.code}). ${fix}`);
      skipRest(['gitlab', 'subpath', 'token', 'encoded_path', 'clone_url', 'egress', 'clock'], 'needs a trusted TLS connection');
      return report();
    }
    const leaf = tlsReport.chain[0];
    add('tls', 'pass', `Certificate for ${leaf?.subject ?? hostname} issued by ${leaf?.issuer ?? 'a trusted authority'}, valid until ${leaf?.validTo ?? '?'}${connection.caPem ? ', trusted through the connection\'s CA' : ''}.`);
  } else {
    add('tls', 'skip', 'Plain http: no certificate to check.');
  }

  const http = (baseUrl: string, withToken: boolean) =>
    GitLabHttp.create({
      baseUrl,
      caPem: connection.caPem,
      policy: deps.policy,
      timeoutMs,
      maxRetries: 0,
      ...(withToken && token !== null ? { token, tokenKind: connection.kind } : {}),
    });
  const get = async (baseUrl: string, path: string, withToken: boolean): Promise<RawResponse | UpstreamError> => {
    const client = http(baseUrl, withToken);
    try {
      return await client.send('GET', client.url(path));
    } catch (error) {
      if (error instanceof UpstreamError) return error;
      throw error;
    } finally {
      await client.close();
    }
  };

  const probe = await get(connection.baseUrl, '/version', false);
  const answers = !(probe instanceof UpstreamError) && answersLikeGitLab(probe);
  if (!answers) {
    add('gitlab', 'fail', `${connection.baseUrl} does not answer like GitLab (${probe instanceof UpstreamError ? probe.message : `/api/v4/version gave ${probe.status}`}).`);
    const candidates = base.pathname === '' || base.pathname === '/' ? [`${base.origin}/gitlab`] : [base.origin];
    for (const candidate of candidates) {
      const other = await get(candidate, '/version', false);
      if (!(other instanceof UpstreamError) && answersLikeGitLab(other)) {
        add('subpath', 'fail', `GitLab answers at ${candidate}, not at ${connection.baseUrl}: reconnect with ${candidate} as the instance URL.`);
        skipRest(['token', 'encoded_path', 'clone_url', 'egress', 'clock'], 'needs GitLab at the base URL');
        return report();
      }
    }
    add('subpath', 'fail', `GitLab answers neither at ${connection.baseUrl} nor at ${candidates.join(' or ')}: check the URL.`);
    skipRest(['token', 'encoded_path', 'clone_url', 'egress', 'clock'], 'needs GitLab at the base URL');
    return report();
  }

  let version: string | null = null;
  if (token !== null) {
    const metadata = await get(connection.baseUrl, '/metadata', true);
    if (!(metadata instanceof UpstreamError) && metadata.status === 200) {
      const parsed = DoctorMetadata.safeParse(parseJson(metadata.body));
      version = parsed.success ? parsed.data.version : null;
    }
  }
  add('gitlab', 'pass', `GitLab${version ? ` ${version}` : ''} answers at ${connection.baseUrl}/api/v4${version ? '' : ' (the version needs a token with read_user or api)'}.`);
  add('subpath', 'pass', base.pathname && base.pathname !== '/' ? `GitLab is served under ${base.pathname}, and the connection keeps it.` : 'GitLab is served at the root of its host.');

  const serverDate = probe.headers.date;
  if (token === null) {
    add('token', 'fail', 'The connection has no usable token: reconnect it.');
  } else {
    const client = deps.gitlab({ baseUrl: connection.baseUrl, caPem: connection.caPem }, { token, kind: connection.kind });
    try {
      if (connection.kind === 'pat') {
        const info = await client.inspectToken();
        const state = tokenState(info === null ? { kind: 'not_personal' } : { kind: 'self', ...info });
        if (info !== null && state.status === 'active') {
          add('token', 'pass', `Active; scopes ${info.scopes.join(', ')}; ${info.expiresAt ? `expires ${info.expiresAt}` : 'never expires'}.`);
        } else {
          add('token', 'fail', `${state.error instanceof Error ? state.error.message : 'GitLab does not take this token.'} Create a new one and reconnect.`);
        }
      } else {
        const account = await client.currentUser();
        add('token', 'pass', `Active OAuth token of @${account.username}.`);
      }
    } catch (error) {
      add('token', 'fail', error instanceof UpstreamError ? `${error.message} Reconnect with a working token.` : String(error));
    } finally {
      await client.close();
    }
  }

  const canUseApi = connection.scopes.includes('api') || connection.scopes.includes('read_api');
  if (token === null || !canUseApi) {
    add('encoded_path', 'skip', 'Needs a token with the api or read_api scope to look a project up.');
    add('clone_url', 'skip', 'Needs a token with the api or read_api scope to read a clone URL.');
  } else {
    const listed = await get(connection.baseUrl, '/projects?membership=true&simple=true&per_page=20&order_by=id&sort=asc', true);
    const parsed = listed instanceof UpstreamError || listed.status !== 200 ? null : DoctorProjects.safeParse(parseJson(listed.body));
    const projects = parsed?.success ? parsed.data : [];
    const sample = projects.find((project) => project.path_with_namespace.includes('/'));
    if (sample === undefined) {
      add('encoded_path', 'skip', 'The account is a member of no project to try.');
      add('clone_url', 'skip', 'The account is a member of no project to read a clone URL from.');
    } else {
      const byPath = await get(connection.baseUrl, `/projects/${encodeURIComponent(sample.path_with_namespace)}`, true);
      const byId = await get(connection.baseUrl, `/projects/${sample.id}`, true);
      const ok = (response: RawResponse | UpstreamError) => !(response instanceof UpstreamError) && response.status === 200;
      if (ok(byPath)) add('encoded_path', 'pass', `Projects are found by their encoded path (${sample.path_with_namespace}).`);
      else if (ok(byId)) {
        add(
          'encoded_path',
          'warn',
          `${sample.path_with_namespace} is found by id but not by its encoded path: a reverse proxy decodes %2F. forgelink falls back to numeric ids, but other tools will fail; ask the administrator to pass URLs through undecoded (NGINX: proxy_pass without a URI part; Apache: AllowEncodedSlashes NoDecode).`,
        );
      } else add('encoded_path', 'fail', `${sample.path_with_namespace} cannot be read by path or by id.`);

      const reported = sample.http_url_to_repo;
      if (reported.startsWith(`${connection.baseUrl}/`)) {
        add('clone_url', 'pass', `GitLab's clone URLs (${reported}) are under the base URL.`);
      } else {
        add(
          'clone_url',
          'warn',
          `GitLab reports the clone URL ${reported}, which is not under ${connection.baseUrl}: its external_url does not match the address forgelink uses. Runs clone through the base URL all the same (${connection.baseUrl}/<project path>.git), but the links GitLab hands out (web pages, merge request and issue URLs, the API's web_url and http_url_to_repo) point to ${originOfBaseUrl(reported)}, which a run's sandbox may not reach; ask the administrator to fix external_url, or connect with the URL GitLab reports.`,
        );
      }
    }
  }

  // Runs clone from the base URL and the project's path (runs/clone-url.ts), whose origin heads the allowlist.
  const allowlist = [originOfBaseUrl(connection.baseUrl), ...deps.runExtraHosts];
  add('egress', 'pass', `Runs on this connection may reach ${allowlist.join(', ')}, which covers the clone URLs they use (${connection.baseUrl}/<project path>.git).`);

  const date = Array.isArray(serverDate) ? serverDate[0] : serverDate;
  const serverTime = date ? Date.parse(date) : Number.NaN;
  if (Number.isNaN(serverTime)) {
    add('clock', 'skip', 'GitLab sent no Date header.');
  } else {
    const offset = serverTime - deps.clock.now().getTime();
    const words = `${Math.abs(Math.round(offset / 1000))} s ${offset >= 0 ? 'ahead of' : 'behind'} this server`;
    if (Math.abs(offset) > CLOCK_FAIL_MS) add('clock', 'fail', `GitLab's clock is ${words}: token expiry and "created since the run began" lookups will be wrong. Synchronise the clocks (NTP).`);
    else if (Math.abs(offset) > CLOCK_WARN_MS) add('clock', 'warn', `GitLab's clock is ${words}; keep the clocks synchronised (NTP).`);
    else add('clock', 'pass', `GitLab's clock and this server's agree (offset ${Math.round(offset / 1000)} s).`);
  }
  return report();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** `connections doctor` for one user's connection; the token is fetched (and refreshed) by `tokenFor`. */
export function createDoctorService(input: {
  deps: DoctorDeps;
  store: ConnectionStore;
  tokenFor: (connection: Connection) => Promise<string>;
}) {
  return {
    async run(userId: string, id: string): Promise<DoctorReport> {
      const connection = await input.store.getConnection(userId, id);
      if (connection === null) throw new NotFoundError('connection_not_found', `No connection ${id}.`);
      const token = await input.tokenFor(connection).catch(() => null);
      return diagnose(input.deps, connection, token);
    },
  };
}

export type DoctorService = ReturnType<typeof createDoctorService>;
