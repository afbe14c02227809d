import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendJson as sendModelApiJson, serveModelApi } from '../model-api-server.ts';
import { errorBody, messageFor, streamEvents, type ScriptTurn } from './messages.ts';

export type { ScriptTurn } from './messages.ts';
export { gitLabWorkScript } from './scripts.ts';

/** One request the fake received; the key is recorded only as whether it matched. */
export type RecordedAnthropicRequest = {
  method: string;
  path: string;
  keyMatched: boolean;
  anthropicVersion: string | null;
  /** The parsed JSON body of a `POST /v1/messages`, else null. */
  body: MessagesRequest | null;
};

type MessagesRequest = {
  model: string;
  stream?: boolean;
  messages: { role: 'user' | 'assistant'; content: unknown }[];
  tools?: { name: string }[];
  [key: string]: unknown;
};

export type FakeAnthropic = {
  /** `http://127.0.0.1:<port>`: what ANTHROPIC_BASE_URL is set to. */
  baseUrl: string;
  /** The origin (`127.0.0.1:<port>`) a sandbox's allowlist needs. */
  origin: string;
  requests: RecordedAnthropicRequest[];
  /** The script's turns the fake has answered (each at least once). */
  turnsServed(): number;
  close(): Promise<void>;
};

export type FakeAnthropicOptions = {
  /** The `x-api-key` every request must carry. */
  apiKey: string;
  /** The assistant's turns, in order. */
  script: ScriptTurn[];
  /** Answer to requests that offer no tools (Claude Code's side queries: titles, summaries); default "OK". */
  sideAnswer?: string;
};

const REQUEST_ID = 'request-id';

function sendJson(res: ServerResponse, status: number, body: string): void {
  sendModelApiJson(res, status, body, REQUEST_ID);
}

/**
 * A scripted stand-in for Anthropic's Messages API over plain HTTP on loopback. `POST /v1/messages` answers
 * the script's next turn, streamed as server-sent events when the request says `"stream": true`, as JSON
 * otherwise; `POST /v1/messages/count_tokens` estimates. Which turn a request gets is read from the
 * conversation it carries (one turn per assistant message already in it), so a retried request gets the same
 * turn again. Requests without tools are Claude Code's side queries and get `sideAnswer`. Every request must
 * carry `x-api-key` (401 authentication_error otherwise) and `anthropic-version` (400), except the
 * unauthenticated `HEAD /api/hello` probe Claude Code sends at start; anything else is 404.
 */
export async function startFakeAnthropic(options: FakeAnthropicOptions): Promise<FakeAnthropic> {
  const requests: RecordedAnthropicRequest[] = [];
  let served = 0;
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake-anthropic');
    const text = await readBody(req);
    const keyMatched = req.headers['x-api-key'] === options.apiKey;
    const version = typeof req.headers['anthropic-version'] === 'string' ? req.headers['anthropic-version'] : null;
    let body: MessagesRequest | null = null;
    if (req.method === 'POST' && url.pathname.startsWith('/v1/messages')) {
      try {
        body = JSON.parse(text) as MessagesRequest;
      } catch {
        body = null;
      }
    }
    requests.push({ method: req.method ?? '', path: url.pathname, keyMatched, anthropicVersion: version, body });

    // Claude Code's connectivity probe at start, sent without credentials; the real API answers it.
    if ((req.method === 'HEAD' || req.method === 'GET') && url.pathname === '/api/hello') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ message: 'hello' }));
      return;
    }
    if (!keyMatched) return sendJson(res, 401, errorBody('authentication_error', 'invalid x-api-key'));
    if (version === null) return sendJson(res, 400, errorBody('invalid_request_error', 'anthropic-version: header is required'));
    if (req.method === 'POST' && url.pathname === '/v1/messages/count_tokens') {
      if (body === null) return sendJson(res, 400, errorBody('invalid_request_error', 'body: not valid JSON'));
      return sendJson(res, 200, JSON.stringify({ input_tokens: Math.ceil(text.length / 4) }));
    }
    if (!(req.method === 'POST' && url.pathname === '/v1/messages')) {
      return sendJson(res, 404, errorBody('not_found_error', `${req.method} ${url.pathname} is not a route of this API`));
    }
    if (body === null || typeof body.model !== 'string' || !Array.isArray(body.messages)) {
      return sendJson(res, 400, errorBody('invalid_request_error', 'model, messages: required'));
    }

    const ids = { message: `msg_${randomBytes(12).toString('hex')}`, toolUse: `toolu_${randomBytes(12).toString('hex')}` };
    const inputTokens = Math.ceil(text.length / 4);
    let turn: ScriptTurn;
    if (body.tools === undefined || body.tools.length === 0) {
      turn = { text: options.sideAnswer ?? 'OK' };
    } else {
      const index = body.messages.filter((message) => message.role === 'assistant').length;
      const scripted = options.script[index];
      if (scripted === undefined) {
        return sendJson(res, 400, errorBody('invalid_request_error', `the script has ${options.script.length} turns; turn ${index + 1} was asked for`));
      }
      served = Math.max(served, index + 1);
      turn = scripted;
    }
    const message = messageFor(turn, ids, body.model, inputTokens);
    if (body.stream !== true) return sendJson(res, 200, JSON.stringify(message));
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': `req_${randomBytes(12).toString('hex')}` });
    for (const event of streamEvents(message)) res.write(event);
    res.end();
  }

  const server = await serveModelApi(handle, { errorBody: (error) => errorBody('api_error', String(error)), requestIdHeader: REQUEST_ID });
  const { port } = server;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    origin: `127.0.0.1:${port}`,
    requests,
    turnsServed: () => served,
    close: () => server.close(),
  };
}
