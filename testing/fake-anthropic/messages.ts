/**
 * What the fake Messages API answers: a Message object (https://docs.anthropic.com/en/api/messages) and the
 * server-sent events that stream it (https://docs.anthropic.com/en/docs/build-with-claude/streaming):
 * `message_start` (content empty), per block `content_block_start` / `content_block_delta`… /
 * `content_block_stop`, then `message_delta` (stop_reason, output usage) and `message_stop`.
 */

/** One scripted assistant turn. */
export type ScriptTurn =
  /** The model calls a tool (`Bash` with `{ command }`, for example); Claude Code runs it and sends the result back. */
  | { tool: string; input: Record<string, unknown>; text?: string }
  /** The model answers with text and ends its turn. */
  | { text: string };

export type ContentBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

export type Usage = {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
};

export type Message = {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ContentBlock[];
  stop_reason: 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence' | null;
  stop_sequence: string | null;
  usage: Usage;
};

/** The Message a turn stands for. */
export function messageFor(turn: ScriptTurn, ids: { message: string; toolUse: string }, model: string, inputTokens: number): Message {
  const content: ContentBlock[] = [];
  if (turn.text !== undefined && turn.text !== '') content.push({ type: 'text', text: turn.text });
  if ('tool' in turn) content.push({ type: 'tool_use', id: ids.toolUse, name: turn.tool, input: turn.input });
  const outputTokens = Math.max(1, Math.ceil(JSON.stringify(content).length / 4));
  return {
    id: ids.message,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: 'tool' in turn ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: inputTokens, output_tokens: outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
}

/** Splits a string into pieces of at most `size` characters, as the API streams text in small deltas. */
function pieces(text: string, size: number): string[] {
  const parts: string[] = [];
  for (let start = 0; start < text.length; start += size) parts.push(text.slice(start, start + size));
  return parts.length === 0 ? [''] : parts;
}

/** The event stream of a Message, as `event: <type>\ndata: <json>\n\n` records. */
export function streamEvents(message: Message): string[] {
  const events: { type: string; [key: string]: unknown }[] = [];
  events.push({
    type: 'message_start',
    message: { ...message, content: [], stop_reason: null, stop_sequence: null, usage: { ...message.usage, output_tokens: 1 } },
  });
  events.push({ type: 'ping' });
  for (const [index, block] of message.content.entries()) {
    if (block.type === 'text') {
      events.push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      for (const text of pieces(block.text, 16)) events.push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } });
    } else {
      // A tool_use block starts with an empty input; the input arrives as partial JSON strings.
      events.push({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } });
      for (const partial_json of pieces(JSON.stringify(block.input), 24)) {
        events.push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json } });
      }
    }
    events.push({ type: 'content_block_stop', index });
  }
  events.push({
    type: 'message_delta',
    delta: { stop_reason: message.stop_reason, stop_sequence: null },
    usage: { output_tokens: message.usage.output_tokens },
  });
  events.push({ type: 'message_stop' });
  return events.map((event) => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
}

/** The API's error body (https://docs.anthropic.com/en/api/errors). */
export function errorBody(type: string, message: string): string {
  return JSON.stringify({ type: 'error', error: { type, message } });
}
