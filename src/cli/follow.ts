import type { RunLogEntry } from '../core/index.ts';
import type { RunView } from '../runs/index.ts';
import { CliError, type ApiClient } from './api-client.ts';

type SseEvent = { event: string; data: string; id: string | null };

/** Parses a `text/event-stream` body into events (the WHATWG format: fields, blank line ends an event). */
export async function* readEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = 'message';
  let data: string[] = [];
  let id: string | null = null;
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.search(/\r?\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer[newline] === '\r' ? 2 : 1));
      if (line === '') {
        if (data.length > 0) yield { event, data: data.join('\n'), id };
        event = 'message';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
  }
}

/**
 * Streams a run's log to `write` until the run ends; reconnects after a dropped connection from the
 * last event it saw. Resolves with the finished run.
 */
export async function followRun(api: ApiClient, runId: string, write: (entry: RunLogEntry) => void): Promise<RunView> {
  let lastSeq = 0;
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const response = await api.stream(`/runs/${encodeURIComponent(runId)}/log?after=${lastSeq}`);
    try {
      for await (const event of readEvents(response)) {
        if (event.event === 'log') {
          const entry = JSON.parse(event.data) as RunLogEntry;
          lastSeq = entry.seq;
          write(entry);
        } else if (event.event === 'end') {
          return JSON.parse(event.data) as RunView;
        }
      }
    } catch {
      // The connection dropped; reconnect below from the last entry seen.
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** attempt, 5_000)));
  }
  throw new CliError(`lost the connection to the server while following run ${runId}; "forgelink runs logs ${runId} --follow" resumes`);
}
