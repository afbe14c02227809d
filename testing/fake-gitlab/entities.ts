import {
  accessLevelOf,
  isExpired,
  namespaceById,
  type FakeNamespace,
  type FakeProject,
  type FakeState,
  type FakeToken,
  type FakeUser,
} from './state.ts';

/** Where the fake says it lives: scheme, host, port and subpath, no trailing slash (GitLab's external_url). */
export interface Site {
  baseUrl: string;
}

function sshHost(site: Site): string {
  return new URL(site.baseUrl).hostname;
}

/** doc/api/personal_access_tokens.md, "Get single personal access token". */
export function tokenEntity(state: FakeState, token: FakeToken) {
  return {
    id: token.id,
    name: token.name,
    revoked: token.revoked,
    created_at: token.createdAt,
    description: token.description,
    scopes: [...token.scopes],
    user_id: token.userId,
    last_used_at: token.lastUsedAt,
    active: !token.revoked && !isExpired(state, token),
    expires_at: token.expiresAt,
  };
}

/** doc/api/users.md, "Get the current user" (Entities::UserPublic). */
export function currentUserEntity(site: Site, user: FakeUser) {
  return {
    id: user.id,
    username: user.username,
    public_email: null,
    name: user.name,
    state: user.state,
    locked: false,
    avatar_url: null,
    web_url: `${site.baseUrl}/${user.username}`,
    created_at: user.createdAt,
    bio: '',
    location: '',
    linkedin: '',
    twitter: '',
    discord: '',
    website_url: '',
    github: '',
    job_title: '',
    pronouns: null,
    organization: '',
    bot: false,
    work_information: null,
    local_time: null,
    last_sign_in_at: user.createdAt,
    confirmed_at: user.createdAt,
    last_activity_on: user.createdAt.slice(0, 10),
    email: user.email,
    theme_id: 1,
    color_scheme_id: 1,
    projects_limit: 100000,
    current_sign_in_at: user.createdAt,
    identities: [],
    can_create_group: true,
    can_create_project: true,
    two_factor_enabled: false,
    external: false,
    private_profile: false,
    commit_email: user.email,
    preferred_language: 'en',
  };
}

function namespaceEntity(site: Site, namespace: FakeNamespace) {
  return {
    id: namespace.id,
    name: namespace.name,
    path: namespace.path,
    kind: namespace.kind,
    full_path: namespace.fullPath,
    parent_id: namespace.parentId,
    avatar_url: null,
    web_url: namespace.kind === 'user' ? `${site.baseUrl}/${namespace.path}` : `${site.baseUrl}/groups/${namespace.fullPath}`,
  };
}

/** "Name / Sub / App": GitLab joins the human names of the namespace chain and the project. */
function nameWithNamespace(state: FakeState, project: FakeProject): string {
  const names: string[] = [project.name];
  let namespace: FakeNamespace | undefined = namespaceById(state, project.namespaceId);
  while (namespace) {
    names.unshift(namespace.name);
    namespace = namespace.parentId === null ? undefined : namespaceById(state, namespace.parentId);
  }
  return names.join(' / ');
}

/** Entities::BasicProjectDetails: what `simple=true` returns. */
export function simpleProjectEntity(state: FakeState, site: Site, project: FakeProject) {
  const webUrl = `${site.baseUrl}/${project.pathWithNamespace}`;
  return {
    id: project.id,
    description: project.description,
    name: project.name,
    name_with_namespace: nameWithNamespace(state, project),
    path: project.path,
    path_with_namespace: project.pathWithNamespace,
    created_at: project.createdAt,
    default_branch: project.defaultBranch,
    tag_list: [] as string[],
    topics: [] as string[],
    ssh_url_to_repo: `git@${sshHost(site)}:${project.pathWithNamespace}.git`,
    http_url_to_repo: `${webUrl}.git`,
    web_url: webUrl,
    readme_url: null,
    forks_count: 0,
    avatar_url: null,
    star_count: 0,
    last_activity_at: project.lastActivityAt,
    namespace: namespaceEntity(site, namespaceById(state, project.namespaceId)),
  };
}

/** Entities::ProjectWithAccess for the signed-in user: the full project plus `permissions`. */
export function projectEntity(state: FakeState, site: Site, project: FakeProject, userId: number) {
  const apiUrl = `${site.baseUrl}/api/v4/projects/${project.id}`;
  const level = accessLevelOf(project, userId);
  return {
    ...simpleProjectEntity(state, site, project),
    updated_at: project.lastActivityAt,
    visibility: project.visibility,
    _links: {
      self: apiUrl,
      issues: `${apiUrl}/issues`,
      merge_requests: `${apiUrl}/merge_requests`,
      repo_branches: `${apiUrl}/repository/branches`,
      labels: `${apiUrl}/labels`,
      events: `${apiUrl}/events`,
      members: `${apiUrl}/members`,
      cluster_agents: `${apiUrl}/cluster_agents`,
    },
    empty_repo: project.defaultBranch === null,
    archived: project.archived,
    resolve_outdated_diff_discussions: false,
    container_registry_enabled: false,
    issues_enabled: true,
    merge_requests_enabled: true,
    wiki_enabled: true,
    jobs_enabled: true,
    snippets_enabled: true,
    issues_access_level: 'enabled',
    repository_access_level: 'enabled',
    merge_requests_access_level: 'enabled',
    shared_runners_enabled: true,
    lfs_enabled: true,
    creator_id: project.members[0]?.userId ?? null,
    import_status: 'none',
    open_issues_count: state.issues.filter((i) => i.projectId === project.id && i.state === 'opened').length,
    ci_default_git_depth: 20,
    public_jobs: true,
    shared_with_groups: [],
    only_allow_merge_if_pipeline_succeeds: false,
    request_access_enabled: true,
    only_allow_merge_if_all_discussions_are_resolved: false,
    remove_source_branch_after_merge: true,
    printing_merge_request_link_enabled: true,
    merge_method: 'merge',
    squash_option: 'default_off',
    permissions: {
      project_access: level === null ? null : { access_level: level, notification_level: 3 },
      group_access: null,
    },
  };
}
