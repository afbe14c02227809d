import { z } from 'zod';

/** `GET /personal_access_tokens/self` (GitLab docs: api/personal_access_tokens.md). */
export const PersonalAccessToken = z.object({
  id: z.number(),
  name: z.string(),
  scopes: z.array(z.string()),
  expires_at: z.string().nullable(),
  active: z.boolean(),
  revoked: z.boolean(),
  user_id: z.number(),
});
export type PersonalAccessToken = z.infer<typeof PersonalAccessToken>;

/** `GET /user` (GitLab docs: api/users.md). */
export const CurrentUser = z.object({
  id: z.number(),
  username: z.string(),
  name: z.string(),
});
export type CurrentUser = z.infer<typeof CurrentUser>;

/** `GET /metadata` (GitLab docs: api/metadata.md). */
export const Metadata = z.object({
  version: z.string(),
  revision: z.string(),
  enterprise: z.boolean(),
});
export type Metadata = z.infer<typeof Metadata>;

/** One element of `GET /projects` (GitLab docs: api/projects.md). */
export const ProjectItem = z.object({
  id: z.number(),
  path_with_namespace: z.string(),
  default_branch: z.string().nullish(),
  web_url: z.string(),
  http_url_to_repo: z.string(),
  // Present on list responses for members; the larger of project and group access counts.
  permissions: z
    .object({
      project_access: z.object({ access_level: z.number() }).nullish(),
      group_access: z.object({ access_level: z.number() }).nullish(),
    })
    .nullish(),
});
export type ProjectItem = z.infer<typeof ProjectItem>;

/**
 * The error bodies GitLab sends: Grape's `{"message": …}` / `{"error": "404 Not Found"}` and
 * rack-oauth2's `{"error": "invalid_token", "error_description": …, "scope": …}` (lib/api/api_guard.rb).
 */
export const ErrorBody = z.object({
  message: z.unknown().optional(),
  error: z.string().optional(),
  error_description: z.string().optional(),
  scope: z.union([z.string(), z.array(z.string())]).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** `GET /version` (GitLab docs: api/version.md); the probe only needs to know it is there. */
export const Version = z.object({ version: z.string() });
export type Version = z.infer<typeof Version>;
