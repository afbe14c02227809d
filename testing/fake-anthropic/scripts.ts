import { GITLAB_WORK_DONE, gitLabWorkSteps } from '../gitlab-work.ts';
import type { ScriptTurn } from './messages.ts';

/**
 * A script that makes Claude Code work on the run's GitLab project through its own Bash tool, one call per
 * turn (testing/gitlab-work.ts): commit and push a branch named after the run (`claude/$FORGELINK_RUN_ID`),
 * open a merge request and file an issue with `$GITLAB_TOKEN`, then say it is done. Used by
 * test/runs/claude-code.test.ts and the demo.
 */
export function gitLabWorkScript(): ScriptTurn[] {
  const steps = gitLabWorkSteps('claude/$FORGELINK_RUN_ID', 'Claude Code');
  return [
    ...steps.map((step, index): ScriptTurn => ({
      ...(index === 0 ? { text: 'I will fix the README on a new branch.' } : {}),
      tool: 'Bash',
      input: { command: step.command, description: step.description },
    })),
    { text: GITLAB_WORK_DONE },
  ];
}
