// git runs this as the pre-receive and post-receive hook of every fake repository (core.hooksPath).
// It plays Gitaly's part: it sends the ref updates to the fake's internal API over a unix socket, as
// Gitaly calls GitLab's /api/v4/internal/allowed and /internal/post_receive, and prints the answer
// the way Gitaly does, so git shows it to the pusher as `remote:` lines. Node built-ins only: it
// starts once per hook run.
import { request } from 'node:http';

interface Message {
  type: 'basic' | 'alert';
  message: string;
}

const TERMINAL_WIDTH = 80;
// Git prefixes every line with "remote: "; Gitaly subtracts that from the width it fills.
const MAX_MESSAGE_WIDTH = TERMINAL_WIDTH - 'remote: '.length;
const MAX_TEXT_WIDTH = MAX_MESSAGE_WIDTH - 2 * 2;

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => (text += chunk));
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}

/** git passes `-o` options as GIT_PUSH_OPTION_COUNT and GIT_PUSH_OPTION_<n> (githooks(5)). */
function pushOptions(): string[] {
  const count = Number.parseInt(process.env.GIT_PUSH_OPTION_COUNT ?? '0', 10) || 0;
  const options: string[] = [];
  for (let i = 0; i < count; i++) options.push(process.env[`GIT_PUSH_OPTION_${i}`] ?? '');
  return options;
}

function call(path: string, payload: unknown): Promise<{ status: number; body: unknown }> {
  const socketPath = process.env.FAKE_GITLAB_HOOK_SOCKET ?? '';
  const data = JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path,
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(data),
          'X-Fake-Gitlab-Hook-Secret': process.env.FAKE_GITLAB_HOOK_SECRET ?? '',
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 500, body: JSON.parse(text) as unknown });
          } catch (error) {
            reject(error);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

function centerLine(line: string): string {
  const trimmed = line.trim();
  return ' '.repeat(Math.max(Math.floor((MAX_MESSAGE_WIDTH - trimmed.length) / 2), 0)) + trimmed;
}

/** Gitaly's printAlert (internal/gitaly/hook/postreceive.go): a framed, word-wrapped, centred block. */
function alert(message: string): string {
  let out = `${'='.repeat(MAX_MESSAGE_WIDTH)}\n\n`;
  let line = '';
  for (const word of message.split(/\s+/).filter((w) => w !== '')) {
    if (line.length + 1 + word.length > MAX_TEXT_WIDTH) {
      out += `${centerLine(line)}\n`;
      line = '';
    }
    line += `${word} `;
  }
  return `${out}${centerLine(line)}\n\n${'='.repeat(MAX_MESSAGE_WIDTH)}`;
}

/** Gitaly's printMessages: each message framed by a blank line before and after. */
function printMessages(messages: readonly Message[]): string {
  let out = '';
  for (const message of messages) out += `\n${message.type === 'alert' ? alert(message.message) : message.message}\n\n`;
  return out;
}

async function main(kind: string): Promise<number> {
  const changes = await readStdin();
  const payload = {
    glId: process.env.GL_ID ?? '',
    glRepository: process.env.GL_REPOSITORY ?? '',
    protocol: process.env.GL_PROTOCOL ?? '',
    changes,
    pushOptions: pushOptions(),
    // Gitaly forwards the quarantine so GitLab can inspect objects that are not yet in the repository.
    env: {
      GIT_OBJECT_DIRECTORY: process.env.GIT_OBJECT_DIRECTORY ?? '',
      GIT_ALTERNATE_OBJECT_DIRECTORIES: process.env.GIT_ALTERNATE_OBJECT_DIRECTORIES ?? '',
      GIT_QUARANTINE_PATH: process.env.GIT_QUARANTINE_PATH ?? '',
    },
  };
  if (kind === 'pre-receive') {
    const { body } = await call('/api/v4/internal/allowed', payload);
    const answer = body as { status?: boolean; message?: string };
    if (answer.status === true) return 0;
    // Gitaly's NotAllowedError: "GitLab: <message>", which git relays as `remote: GitLab: …`.
    process.stderr.write(`GitLab: ${answer.message ?? 'Access denied'}\n`);
    return 1;
  }
  const { body } = await call('/api/v4/internal/post_receive', payload);
  const answer = body as { messages?: Message[] };
  process.stdout.write(printMessages(answer.messages ?? []));
  return 0;
}

const kind = process.argv[2] ?? '';
main(kind).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // gitlab-shell's wording when the internal API cannot be reached.
    process.stderr.write(`GitLab: Failed to authorize your Git request: internal API unreachable (${String(error)})\n`);
    process.exit(kind === 'pre-receive' ? 1 : 0);
  },
);
