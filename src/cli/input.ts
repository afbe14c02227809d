import { CliError } from './api-client.ts';
import type { CliIo } from './context.ts';

const MAX_STDIN_BYTES = 1024 * 1024;

/** Reads all of stdin (bounded). */
export async function readStdin(io: CliIo): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += buffer.length;
    if (size > MAX_STDIN_BYTES) throw new CliError('stdin is larger than 1 MiB; expected a single token');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Asks for a secret on the terminal without echoing it. */
export async function promptSecret(io: CliIo, question: string): Promise<string> {
  if (io.stdin.isTTY !== true) return readStdin(io);
  // A terminal: the process's own stdin.
  const stdin = io.stdin as NodeJS.ReadStream;
  const { stderr } = io;
  stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let answer = '';
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n' || char === '\u0004') {
          finish();
          resolve(answer);
          return;
        }
        if (char === '\u0003') {
          finish();
          reject(new CliError('canceled', { exitCode: 130, code: 'canceled' }));
          return;
        }
        if (char === '\u007f' || char === '\b') answer = answer.slice(0, -1);
        else answer += char;
      }
    };
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

/** Whether a person is there to answer a question: stdin and stderr are both terminals. */
export function canAsk(io: CliIo): boolean {
  return io.stdin.isTTY === true && io.stderr.isTTY === true;
}

/** Asks a yes/no question on the terminal; only an answer starting with y is yes. */
export async function confirm(io: CliIo, question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const prompt = createInterface({ input: io.stdin, output: io.stderr as NodeJS.WritableStream });
  try {
    return /^\s*y/i.test(await prompt.question(`${question} [y/N] `));
  } finally {
    prompt.close();
  }
}
