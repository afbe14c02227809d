import { spawn } from 'node:child_process';
import { forgelinkProcessEnv, MAIN } from './processes.ts';

/**
 * Runs a command on a real pseudo-terminal (python3's `pty` module): stdin, stdout and stderr are all the
 * terminal, as when a person types the command. This relay copies the terminal's output to its stdout and
 * its stdin to the terminal, and exits with the command's exit code.
 */
const PTY_RELAY = `
import os, pty, select, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
stdin_open = True
while True:
    ready, _, _ = select.select([fd] + ([0] if stdin_open else []), [], [])
    if fd in ready:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b''
        if not data:
            break
        os.write(1, data)
    if stdin_open and 0 in ready:
        data = os.read(0, 4096)
        if data:
            os.write(fd, data)
        else:
            stdin_open = False
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`;

/** The cursor moves and line clearing readline writes around a question (`ESC[1G`, `ESC[0J`, `ESC[147G`). */
const CURSOR_CODES = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** An answer typed once `after` has appeared on the terminal (since the previous answer). */
export type TerminalAnswer = { after: RegExp; answer: string };

export type TerminalResult = { code: number | null; transcript: string; asked: number };

/**
 * Runs `forgelink <args>` on a pseudo-terminal and types each answer (and Enter) when its prompt shows. The
 * transcript is what the terminal showed (stdout and stderr together, the typed answers echoed), with `\r\n` as `\n`
 * and without cursor codes.
 */
export function forgelinkInTerminal(args: string[], options: { env: NodeJS.ProcessEnv; answers?: TerminalAnswer[]; timeoutMs?: number }): Promise<TerminalResult> {
  const answers = [...(options.answers ?? [])];
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', PTY_RELAY, process.execPath, MAIN, ...args], {
      env: forgelinkProcessEnv(options.env),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let shown = '';
    let transcript = '';
    let since = 0;
    let asked = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`forgelink ${args.join(' ')} did not finish on the terminal; it showed:\n${transcript}`));
    }, options.timeoutMs ?? 90_000);
    child.stdout.on('data', (chunk: Buffer) => {
      shown += chunk.toString();
      transcript = shown.replaceAll('\r\n', '\n').replace(CURSOR_CODES, '');
      const next = answers[0];
      if (next !== undefined && next.after.test(transcript.slice(since))) {
        answers.shift();
        asked += 1;
        since = transcript.length;
        child.stdin.write(`${next.answer}\n`);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, transcript, asked });
    });
  });
}
