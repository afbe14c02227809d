/**
 * What the scripted model stand-ins (testing/fake-anthropic, testing/fake-openai) make a real agent do on the
 * run's GitLab project through its own shell tool, one command per turn: commit and push a branch, open a
 * merge request and file an issue with `$GITLAB_TOKEN`, then say it is done.
 */
export type GitLabWorkStep = { command: string; description: string };

export const GITLAB_WORK_DONE = 'Done: pushed the fix, opened a merge request and filed an issue.';

/** The three shell commands, for a branch such as `claude/$FORGELINK_RUN_ID` (a shell word, expanded in the sandbox). */
export function gitLabWorkSteps(branch: string, by: string): GitLabWorkStep[] {
  // The project is the clone's: its path from the remote URL, URL-encoded as GitLab's API takes it.
  const project = 'p=$(git remote get-url origin | sed -e "s|^$GITLAB_OAUTH_BASE_URL/||" -e "s|\\.git$||" -e "s|/|%2F|g") && ';
  const api = '"$GITLAB_OAUTH_BASE_URL/api/v4/projects/$p';
  // The header comes on stdin (`-H @-`) from the shell's builtin printf, so the token is in no argv.
  const curl = 'printf "PRIVATE-TOKEN: %s\\n" "$GITLAB_TOKEN" | curl -sS --fail-with-body -H @-';
  return [
    {
      command: `git checkout -b "${branch}" && echo "Fixed by ${by}." >> README.md && git commit -qam "Fix the README" && git push -q origin "${branch}"`,
      description: 'Commit the fix and push a branch',
    },
    {
      command: `${project}${curl} -X POST ${api}/merge_requests" --data-urlencode "source_branch=${branch}" --data-urlencode "target_branch=main" --data-urlencode "title=Fix the README"`,
      description: 'Open a merge request',
    },
    {
      command: `${project}${curl} -X POST ${api}/issues" --data-urlencode "title=README needs a review" --data-urlencode "description=Filed by ${by}"`,
      description: 'File an issue',
    },
  ];
}
