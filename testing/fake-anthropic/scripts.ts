import type { ScriptTurn } from './messages.ts';

/**
 * A script that makes Claude Code work on the run's GitLab project through its own Bash tool, one call per
 * turn: commit and push a branch named after the run (`claude/$FORGELINK_RUN_ID`), open a merge request and
 * file an issue with `$GITLAB_TOKEN`, then say it is done. Used by test/runs/claude-code.test.ts and the demo.
 */
export function gitLabWorkScript(): ScriptTurn[] {
  // The project is the clone's: its path from the remote URL, URL-encoded as GitLab's API takes it.
  const project = 'p=$(git remote get-url origin | sed -e "s|^$GITLAB_OAUTH_BASE_URL/||" -e "s|\\.git$||" -e "s|/|%2F|g") && ';
  const api = '"$GITLAB_OAUTH_BASE_URL/api/v4/projects/$p';
  // The header comes on stdin (`-H @-`) from the shell's builtin printf, so the token is in no argv.
  const curl = 'printf "PRIVATE-TOKEN: %s\\n" "$GITLAB_TOKEN" | curl -sS --fail-with-body -H @-';
  return [
    {
      text: 'I will fix the README on a new branch.',
      tool: 'Bash',
      input: {
        command:
          'git checkout -b "claude/$FORGELINK_RUN_ID" && echo "Fixed by Claude Code." >> README.md && git commit -qam "Fix the README" && git push -q origin "claude/$FORGELINK_RUN_ID"',
        description: 'Commit the fix and push a branch',
      },
    },
    {
      tool: 'Bash',
      input: {
        command: `${project}${curl} -X POST ${api}/merge_requests" --data-urlencode "source_branch=claude/$FORGELINK_RUN_ID" --data-urlencode "target_branch=main" --data-urlencode "title=Fix the README"`,
        description: 'Open a merge request',
      },
    },
    {
      tool: 'Bash',
      input: {
        command: `${project}${curl} -X POST ${api}/issues" --data-urlencode "title=README needs a review" --data-urlencode "description=Filed by Claude Code"`,
        description: 'File an issue',
      },
    },
    { text: 'Done: pushed the fix, opened a merge request and filed an issue.' },
  ];
}
