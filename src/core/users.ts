/** What a user name may be: the CLI's `admin user add` and the dashboard's first-start setup both hold to it. */
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Why `name` (already trimmed) cannot be a user name, or null when it can. */
export function userNameProblem(name: string): string | null {
  return USER_NAME.test(name) ? null : 'A user name is 1–64 letters, digits, dots, dashes or underscores.';
}
