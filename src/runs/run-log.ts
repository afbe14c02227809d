import type { RunLogEntry, RunStore } from '../core/index.ts';
import { createScrubber } from '../core/index.ts';

type Stream = RunLogEntry['stream'];

/**
 * A run's log: every line is scrubbed of the run's secrets before it is stored, and written in small
 * batches so a chatty agent does not turn into one database write per chunk.
 */
export function createRunLog(options: { runId: string; store: RunStore; secrets: string[]; now: () => Date }) {
  const { runId, store } = options;
  const scrubbers = {
    stdout: createScrubber(options.secrets),
    stderr: createScrubber(options.secrets),
    system: createScrubber(options.secrets),
  };
  let pending: Omit<RunLogEntry, 'seq'>[] = [];
  let writing: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;
  /** Scrubbed agent output kept for detecting merge requests announced in push replies (bounded). */
  let transcript = '';
  const MAX_TRANSCRIPT = 4 * 1024 * 1024;

  function add(stream: Stream, text: string): void {
    if (text === '') return;
    pending.push({ at: options.now().toISOString(), stream, text });
    if (stream !== 'system') {
      transcript += text;
      if (transcript.length > MAX_TRANSCRIPT) transcript = transcript.slice(-MAX_TRANSCRIPT);
    }
    timer ??= setTimeout(flushPending, 100);
  }

  function flushPending(): Promise<void> {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    const batch = pending;
    pending = [];
    if (batch.length > 0) writing = writing.then(() => store.appendLog(runId, batch));
    return writing;
  }

  return {
    /** Agent or git output; may end mid-line. */
    output(text: string, stream: 'stdout' | 'stderr'): void {
      add(stream, scrubbers[stream].push(text));
    },
    /** A line from forgelink itself. */
    system(line: string): void {
      add('system', scrubbers.system.push(`${line}\n`) + scrubbers.system.flush());
    },
    /** A secret the run was given after it started (a refreshed OAuth token): redacted from now on. */
    addSecret(secret: string): void {
      for (const scrubber of Object.values(scrubbers)) scrubber.add(secret);
    },
    transcript: () => transcript,
    /** Writes everything still held back; call at the end of the run. */
    async close(): Promise<void> {
      add('stdout', scrubbers.stdout.flush());
      add('stderr', scrubbers.stderr.flush());
      await flushPending();
    },
  };
}

export type RunLog = ReturnType<typeof createRunLog>;
