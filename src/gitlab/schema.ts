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

/**
 * `POST /personal_access_tokens/self/rotate` (GitLab docs: api/personal_access_tokens.md, "Rotate a personal access
 * token"; Entities::PersonalAccessTokenWithToken): the new token's fields plus the token itself. Only what forgelink
 * keeps is required, so an answer is never thrown away for a field it does not need.
 */
export const RotatedPersonalAccessToken = z.object({
  id: z.number(),
  token: z.string().min(1),
  scopes: z.array(z.string()).optional(),
  expires_at: z.string().nullish(),
});
export type RotatedPersonalAccessToken = z.infer<typeof RotatedPersonalAccessToken>;

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

/** GitLab's anonymous `401 {"message":"401 Unauthorized"}` (lib/api/helpers.rb `unauthorized!`), as the probe reads it. */
export const UnauthorizedBody = z.object({ message: z.string() });
export type UnauthorizedBody = z.infer<typeof UnauthorizedBody>;

/** `GET /projects/:id` (GitLab docs: api/projects.md, "Get a single project"): the list fields plus `archived`. */
export const ProjectDetailItem = ProjectItem.extend({ archived: z.boolean() });
export type ProjectDetailItem = z.infer<typeof ProjectDetailItem>;

/** One element of `GET /projects?simple=true` (Entities::BasicProjectDetails): enough to find a project's id. */
export const ProjectIdentity = z.object({ id: z.number(), path_with_namespace: z.string() });
export type ProjectIdentity = z.infer<typeof ProjectIdentity>;

/**
 * One rule of a protected branch. Rules for a user, group or deploy key (Premium) carry an `access_level` as
 * well — the docs' examples show 40 next to a `user_id` — so the ids tell a role rule from the others.
 */
const AccessRule = z.object({
  access_level: z.number().nullish(),
  user_id: z.number().nullish(),
  group_id: z.number().nullish(),
  deploy_key_id: z.number().nullish(),
});

/** One element of `GET /projects/:id/protected_branches` (GitLab docs: api/protected_branches.md). */
export const ProtectedBranchItem = z.object({
  name: z.string(),
  push_access_levels: z.array(AccessRule).default([]),
  merge_access_levels: z.array(AccessRule).default([]),
  allow_force_push: z.boolean().default(false),
});
export type ProtectedBranchItem = z.infer<typeof ProtectedBranchItem>;

/** `GET /projects/:id/repository/branches/:branch` (GitLab docs: api/branches.md); only existence matters. */
export const BranchItem = z.object({ name: z.string() });
export type BranchItem = z.infer<typeof BranchItem>;

const Author = z.object({ id: z.number() });

/** One element of `GET /projects/:id/merge_requests` (GitLab docs: api/merge_requests.md). */
export const MergeRequestItem = z.object({
  iid: z.number(),
  title: z.string(),
  source_branch: z.string(),
  target_branch: z.string(),
  web_url: z.string(),
  author: Author,
  created_at: z.string(),
});
export type MergeRequestItem = z.infer<typeof MergeRequestItem>;

/** One element of `GET /projects/:id/issues` (GitLab docs: api/issues.md). */
export const IssueItem = z.object({
  iid: z.number(),
  title: z.string(),
  web_url: z.string(),
  author: Author,
  created_at: z.string(),
});
export type IssueItem = z.infer<typeof IssueItem>;

/**
 * `GET /oauth/token/info` (Doorkeeper's token info endpoint, GitLab docs: api/oauth2.md, "Retrieve the token
 * information"). `scope` is a list there (`scopes` in newer versions carries the same); `expires_in` is
 * seconds left, null for tokens that do not expire.
 */
export const OAuthTokenInfo = z.object({
  resource_owner_id: z.number(),
  scope: z.array(z.string()).optional(),
  scopes: z.array(z.string()).optional(),
  expires_in: z.number().nullable().optional(),
  application: z.object({ uid: z.string() }).nullable().optional(),
});
export type OAuthTokenInfo = z.infer<typeof OAuthTokenInfo>;
