import { ForgelinkError, projectPathProblem } from '../core/index.ts';

/**
 * The HTTPS clone URL of a project: the connection's base URL (subpath included) and the project's path.
 * The path is checked again here, whoever supplied it — the user, or GitLab's `path_with_namespace` — so a
 * dot segment can never make URL resolution (curl's, inside git) land on another project or outside the
 * subpath GitLab is installed under. Built from the base URL rather than GitLab's `http_url_to_repo`, which
 * names GitLab's own `external_url` and may be an address the run's sandbox is not allowed to reach.
 */
export function cloneUrlOf(baseUrl: string, projectPath: string): string {
  const problem = projectPathProblem(projectPath);
  if (problem !== null || /^[0-9]+$/.test(projectPath)) {
    throw new ForgelinkError('invalid_project_path', `Cannot build a clone URL: the project path "${projectPath}" ${problem ?? 'is an id, not a path'}.`);
  }
  return `${baseUrl.replace(/\/+$/, '')}/${projectPath}.git`;
}
