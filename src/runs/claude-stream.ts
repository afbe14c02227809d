import { z } from 'zod';

/** The parts of Claude Code's `--output-format stream-json` events that the log shows; the rest is ignored. */
const Block = z.looseObject({
  type: z.string(),
  text: z.string().optional(),
  name: z.string().optional(),
  input: z.record(z.string(), z.unknown()).optional(),
  content: z.unknown().optional(),
  is_error: z.boolean().optional(),
});
const Event = z.looseObject({
  type: z.string(),
  subtype: z.string().optional(),
  model: z.string().optional(),
  message: z.looseObject({ content: z.union([z.string(), z.array(Block)]).optional() }).optional(),
  num_turns: z.number().optional(),
  total_cost_usd: z.number().optional(),
  duration_ms: z.number().optional(),
  is_error: z.boolean().optional(),
  result: z.string().optional(),
});

const MAX_TOOL_LINES = 20;

function clip(text: string): string {
  const lines = text.replace(/\s+$/, '').split('\n');
  if (lines.length <= MAX_TOOL_LINES) return lines.map((line) => `  ${line}`).join('\n');
  return [...lines.slice(0, MAX_TOOL_LINES).map((line) => `  ${line}`), `  … (${lines.length - MAX_TOOL_LINES} more lines)`].join('\n');
}

function toolInput(name: string, input: Record<string, unknown>): string {
  for (const key of ['command', 'file_path', 'path', 'pattern', 'url', 'description']) {
    const value = input[key];
    if (typeof value === 'string') return `${name}: ${value}`;
  }
  return `${name} ${JSON.stringify(input)}`;
}

function resultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part) => (typeof part === 'object' && part !== null && 'text' in part ? String(part.text) : '')).join('\n');
  }
  return '';
}

/** The readable lines for one stream-json line; a line that is not such an event comes back unchanged. */
export function formatClaudeEvent(line: string): string {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return `${line}\n`;
  }
  const parsed = Event.safeParse(json);
  if (!parsed.success) return `${line}\n`;
  const event = parsed.data;
  const out: string[] = [];
  if (event.type === 'system' && event.subtype === 'init') out.push(`Claude Code started${event.model ? ` (model ${event.model})` : ''}`);
  else if (event.type === 'system' && event.subtype === 'api_retry') out.push('Claude Code: model API request failed; retrying');
  else if (event.type === 'assistant' || event.type === 'user') {
    const content = event.message?.content;
    for (const block of typeof content === 'string' ? [{ type: 'text', text: content }] : (content ?? [])) {
      if (block.type === 'text' && event.type === 'assistant' && block.text) out.push(`Claude: ${block.text}`);
      else if (block.type === 'tool_use') out.push(`→ ${toolInput(block.name ?? 'tool', block.input ?? {})}`);
      else if (block.type === 'tool_result') {
        const text = resultText(block.content);
        out.push(`${block.is_error ? '✗' : '←'} ${text.trim() === '' ? '(no output)' : `\n${clip(text)}`}`);
      }
    }
  } else if (event.type === 'result') {
    const parts = [event.is_error || event.subtype !== 'success' ? `ended: ${event.subtype ?? 'error'}` : 'finished'];
    if (event.num_turns !== undefined) parts.push(`${event.num_turns} turn${event.num_turns === 1 ? '' : 's'}`);
    if (event.total_cost_usd !== undefined) parts.push(`cost $${event.total_cost_usd.toFixed(4)}`);
    if (event.duration_ms !== undefined) parts.push(`${(event.duration_ms / 1000).toFixed(1)} s`);
    out.push(`Claude Code ${parts.join(', ')}`);
  }
  return out.map((text) => `${text}\n`).join('');
}

/** Line-buffers a stdout stream of stream-json events into readable text; `flush` at the end. */
export function createClaudeStreamFormatter() {
  let pending = '';
  return {
    push(chunk: string): string {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      return lines.filter((line) => line.trim() !== '').map(formatClaudeEvent).join('');
    },
    flush(): string {
      const rest = pending;
      pending = '';
      return rest.trim() === '' ? '' : formatClaudeEvent(rest);
    },
  };
}
