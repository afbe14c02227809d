import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClaudeStreamFormatter } from '../../src/runs/claude-stream.ts';

test("Claude Code's stream-json events become readable lines, split anywhere across chunks", () => {
  const events = [
    { type: 'system', subtype: 'init', model: 'claude-test', tools: ['Bash'] },
    { type: 'assistant', message: { content: [{ type: 'text', text: 'Looking at the tests.' }] } },
    { type: 'assistant', message: { content: [{ type: 'tool_use', id: 't1', name: 'Bash', input: { command: 'npm test', description: 'run' } }] } },
    { type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: 't1', content: Array.from({ length: 25 }, (_, i) => `line ${i + 1}`).join('\n') }] } },
    { type: 'assistant', message: { content: [{ type: 'tool_use', id: 't2', name: 'Edit', input: { file_path: 'src/a.ts', old_string: 'x' } }] } },
    { type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: 't2', content: '', is_error: true }] } },
    { type: 'system', subtype: 'task_started' },
    { type: 'result', subtype: 'success', is_error: false, num_turns: 3, total_cost_usd: 0.01234, duration_ms: 4200, result: 'Fixed.' },
  ];
  const text = `${events.map((event) => JSON.stringify(event)).join('\n')}\nplain text from a wrapper\n`;
  const formatter = createClaudeStreamFormatter();
  let out = '';
  for (let at = 0; at < text.length; at += 7) out += formatter.push(text.slice(at, at + 7));
  out += formatter.flush();
  assert.equal(
    out,
    [
      'Claude Code started (model claude-test)',
      'Claude: Looking at the tests.',
      '→ Bash: npm test',
      '← ',
      ...Array.from({ length: 20 }, (_, i) => `  line ${i + 1}`),
      '  … (5 more lines)',
      '→ Edit: src/a.ts',
      '✗ (no output)',
      'Claude Code finished, 3 turns, cost $0.0123, 4.2 s',
      'plain text from a wrapper',
      '',
    ].join('\n'),
  );
});

test('a failed run says how it ended; an unfinished last line is formatted at flush', () => {
  const formatter = createClaudeStreamFormatter();
  const out = formatter.push(JSON.stringify({ type: 'result', subtype: 'error_max_turns', is_error: true, num_turns: 1 })) + formatter.flush();
  assert.equal(out, 'Claude Code ended: error_max_turns, 1 turn\n');
});
