import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendJson as sendModelApiJson, serveModelApi } from '../model-api-server.ts';
import { GITLAB_WORK_DONE, gitLabWorkSteps } from '../gitlab-work.ts';

/**
 * A scripted stand-in for OpenAI's Responses API (`POST /v1/responses`, https://platform.openai.com/docs/api-reference/responses)
 * as Codex (`codex exec`) uses it: a streamed response of server-sent events — `response.created`, per output
 * item `response.output_item.added` / `response.output_item.done` (with `response.output_text.delta` for a
 * message's text), then `response.completed` with the usage. A turn is either a `function_call` of the tool
 * Codex offers for shell commands (`exec_command` with `{ cmd }`), which Codex runs and answers with a
 * `function_call_output` item in its next request, or an assistant message that ends the task.
 */

/** One scripted model turn. */
export type OpenAiTurn =
  /** Call a function tool: Codex's shell tool is `exec_command` with `{ cmd: "…" }`. */
  | { tool: string; arguments: Record<string, unknown>; text?: string }
  /** Answer with text and end the turn. */
  | { text: string };

/** One request the fake received; the key is recorded only as whether it matched. */
export type RecordedOpenAiRequest = {
  method: string;
  path: string;
  keyMatched: boolean;
  /** The parsed JSON body of a `POST /v1/responses`, else null. */
  body: ResponsesRequest | null;
};

export type ResponseInputItem = { type: string; role?: string; call_id?: string; output?: unknown; [key: string]: unknown };

type ResponsesRequest = {
  model: string;
  stream?: boolean;
  input: ResponseInputItem[];
  tools?: { type: string; name?: string }[];
  [key: string]: unknown;
};

export type FakeOpenAi = {
  /** `http://127.0.0.1:<port>/v1`: what a Codex model provider's `base_url` (or OPENAI_BASE_URL) is set to. */
  baseUrl: string;
  /** The origin (`127.0.0.1:<port>`) a sandbox's allowlist needs. */
  origin: string;
  requests: RecordedOpenAiRequest[];
  /** The script's turns the fake has answered (each at least once). */
  turnsServed(): number;
  close(): Promise<void>;
};

export type FakeOpenAiOptions = {
  /** The bearer token every request must carry. */
  apiKey: string;
  script: OpenAiTurn[];
  /** Answer to requests that offer no tools; default "OK". */
  sideAnswer?: string;
};

/** Makes Codex do the GitLab work of testing/gitlab-work.ts on a branch `codex/$FORGELINK_RUN_ID`, one `exec_command` a turn. */
export function codexGitLabWorkScript(): OpenAiTurn[] {
  return [
    ...gitLabWorkSteps('codex/$FORGELINK_RUN_ID', 'Codex').map(
      (step, index): OpenAiTurn => ({ ...(index === 0 ? { text: 'I will fix the README on a new branch.' } : {}), tool: 'exec_command', arguments: { cmd: step.command } }),
    ),
    { text: GITLAB_WORK_DONE },
  ];
}

function errorBody(status: number, message: string, code: string | null): string {
  return JSON.stringify({ error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code } });
}

const REQUEST_ID = 'x-request-id';

function sendJson(res: ServerResponse, status: number, body: string): void {
  sendModelApiJson(res, status, body, REQUEST_ID);
}

const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

/** The output items a turn stands for: an assistant message with its text, then the function call, if any. */
function outputFor(turn: OpenAiTurn): Record<string, unknown>[] {
  const items: Record<string, unknown>[] = [];
  if (turn.text !== undefined && turn.text !== '') {
    items.push({ type: 'message', id: id('msg'), status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: turn.text, annotations: [] }] });
  }
  if ('tool' in turn) {
    items.push({ type: 'function_call', id: id('fc'), status: 'completed', call_id: id('call'), name: turn.tool, arguments: JSON.stringify(turn.arguments) });
  }
  return items;
}

/** Which turn a request asks for: one per model turn already in its input (an assistant message or a function call). */
function turnIndex(input: readonly ResponseInputItem[]): number {
  let turns = 0;
  let previousWasModel = false;
  for (const item of input) {
    const byModel = item.type === 'function_call' || (item.type === 'message' && item.role === 'assistant');
    if (byModel && !previousWasModel) turns += 1;
    previousWasModel = byModel;
  }
  return turns;
}

/**
 * Starts the fake on loopback over plain HTTP. Which turn a request gets is read from the conversation it
 * carries, so a retried request gets the same turn again. Every request must carry `Authorization: Bearer
 * <apiKey>` (401 `invalid_api_key` otherwise); anything but `POST /v1/responses` is 404 in the API's error shape.
 */
export async function startFakeOpenAi(options: FakeOpenAiOptions): Promise<FakeOpenAi> {
  const requests: RecordedOpenAiRequest[] = [];
  let served = 0;
  let sequence = 0;
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake-openai');
    const text = await readBody(req);
    const keyMatched = req.headers.authorization === `Bearer ${options.apiKey}`;
    let body: ResponsesRequest | null = null;
    if (req.method === 'POST' && url.pathname === '/v1/responses') {
      try {
        body = JSON.parse(text) as ResponsesRequest;
      } catch {
        body = null;
      }
    }
    requests.push({ method: req.method ?? '', path: url.pathname, keyMatched, body });
    if (!keyMatched) return sendJson(res, 401, errorBody(401, 'Incorrect API key provided.', 'invalid_api_key'));
    if (!(req.method === 'POST' && url.pathname === '/v1/responses')) {
      return sendJson(res, 404, errorBody(404, `Invalid URL (${req.method} ${url.pathname})`, null));
    }
    if (body === null || typeof body.model !== 'string' || !Array.isArray(body.input)) {
      return sendJson(res, 400, errorBody(400, 'model, input: required', null));
    }

    let turn: OpenAiTurn;
    if (body.tools === undefined || body.tools.length === 0) {
      turn = { text: options.sideAnswer ?? 'OK' };
    } else {
      const index = turnIndex(body.input);
      const scripted = options.script[index];
      if (scripted === undefined) return sendJson(res, 400, errorBody(400, `the script has ${options.script.length} turns; turn ${index + 1} was asked for`, null));
      served = Math.max(served, index + 1);
      turn = scripted;
    }
    const output = outputFor(turn);
    const inputTokens = Math.ceil(text.length / 4);
    const outputTokens = Math.ceil(JSON.stringify(output).length / 4);
    const response = {
      id: id('resp'),
      object: 'response',
      created_at: Math.floor(Date.now() / 1000),
      status: 'completed',
      model: body.model,
      output,
      usage: {
        input_tokens: inputTokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: outputTokens,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: inputTokens + outputTokens,
      },
    };
    if (body.stream !== true) return sendJson(res, 200, JSON.stringify(response));

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': id('req') });
    const send = (event: Record<string, unknown> & { type: string }) => {
      sequence += 1;
      res.write(`event: ${event.type}\ndata: ${JSON.stringify({ ...event, sequence_number: sequence })}\n\n`);
    };
    send({ type: 'response.created', response: { ...response, status: 'in_progress', output: [], usage: null } });
    output.forEach((item, index) => {
      send({ type: 'response.output_item.added', output_index: index, item: { ...item, status: 'in_progress', ...(item.type === 'message' ? { content: [] } : { arguments: '' }) } });
      if (item.type === 'message') {
        const content = (item.content as { text: string }[])[0] as { text: string };
        send({ type: 'response.output_text.delta', item_id: item.id, output_index: index, content_index: 0, delta: content.text });
        send({ type: 'response.output_text.done', item_id: item.id, output_index: index, content_index: 0, text: content.text });
      }
      send({ type: 'response.output_item.done', output_index: index, item });
    });
    send({ type: 'response.completed', response });
    res.end();
  }

  const server = await serveModelApi(handle, { errorBody: (error) => errorBody(500, String(error), null), requestIdHeader: REQUEST_ID });
  const { port } = server;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    origin: `127.0.0.1:${port}`,
    requests,
    turnsServed: () => served,
    close: () => server.close(),
  };
}
