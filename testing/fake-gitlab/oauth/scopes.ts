/**
 * Scopes GitLab configures in Doorkeeper (Gitlab::Auth DEFAULT_SCOPES + optional_scopes, lib/gitlab/auth.rb)
 * with the consent page texts from config/locales/doorkeeper.en.yml (`scopes` and `scope_desc`).
 * `enforce_configured_scopes` (config/initializers/doorkeeper.rb) rejects applications asking for others.
 */
export const OAUTH_SCOPES: Readonly<Record<string, { title: string; description: string }>> = {
  api: {
    title: "Access the authenticated user's API",
    description: 'Grants complete read/write access to the API, including all groups and projects.',
  },
  read_api: {
    title: "Read the authenticated user's API",
    description: 'Grants read access to the API, including all groups and projects.',
  },
  read_user: {
    title: "Read the authenticated user's personal information",
    description:
      "Grants read-only access to the authenticated user's profile through the /user API endpoint, which includes username, public email, and full name. Also grants access to read-only API endpoints under /users.",
  },
  read_repository: {
    title: 'Allows read-only access to the repository',
    description: 'Grants read-only access to repositories on private projects using Git-over-HTTP or the Repository Files API.',
  },
  write_repository: {
    title: 'Allows read-write access to the repository',
    description: 'Grants read-write access to repositories on private projects using Git-over-HTTP (not using the API).',
  },
  read_registry: {
    title: 'Grants permission to read container registry images',
    description: 'Grants read-only access to container registry images on private projects.',
  },
  write_registry: {
    title: 'Grants permission to write container registry images',
    description: 'Grants write access to container registry images on private projects.',
  },
  create_runner: { title: 'Create runners', description: 'Grants create access to the runners.' },
  manage_runner: { title: 'Manage runners', description: 'Grants access to manage the runners.' },
  k8s_proxy: {
    title: 'Kubernetes API calls',
    description: 'Grants permission to perform Kubernetes API calls using the agent for Kubernetes.',
  },
  self_rotate: { title: 'Rotate the token', description: 'Grants permission to rotate this token.' },
  sudo: {
    title: 'Perform API actions as any user in the system',
    description: 'Grants permission to perform API actions as any user in the system, when authenticated as an admin user.',
  },
  admin_mode: {
    title: 'Admin Mode is a functionality for administrators',
    description: 'Grants permission to perform API actions as an administrator, when Admin Mode is enabled.',
  },
  openid: {
    title: 'Authenticate using OpenID Connect',
    description:
      'Grants permission to authenticate with GitLab using OpenID Connect. Also gives read-only access to the user\'s profile and group memberships.',
  },
  profile: {
    title: "Allows read-only access to the user's personal information using OpenID Connect",
    description: "Grants read-only access to the user's profile data using OpenID Connect.",
  },
  email: {
    title: "Allows read-only access to the user's primary email address using OpenID Connect",
    description: "Grants read-only access to the user's primary email address using OpenID Connect.",
  },
};

export function isKnownScope(scope: string): boolean {
  return Object.hasOwn(OAUTH_SCOPES, scope);
}

/** Doorkeeper's Scopes.from_string: split on whitespace, blanks dropped. */
export function parseScopes(value: string): string[] {
  return value.split(/\s+/).filter((s) => s !== '');
}
