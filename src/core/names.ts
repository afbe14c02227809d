/**
 * Names users type that end up in URLs and git commands: GitLab project paths and git branch names. Each
 * check returns why a name is refused (a phrase to put after the name), or null when it is acceptable.
 */

/** GitLab limits a path segment to 255 characters (`Namespace::URL_MAX_LENGTH`). */
const MAX_SEGMENT_LENGTH = 255;
/** GitLab nests groups at most 20 deep, so a project path has at most 21 namespaces and the project. */
const MAX_SEGMENTS = 22;
const PATH_CHARACTERS = /^[A-Za-z0-9_.-]+$/;
/** Project ids are positive integers; more than 18 digits is no id GitLab hands out. */
const PROJECT_ID = /^[1-9][0-9]{0,17}$/;

/** True for a numeric project id (`42`), which the API resolves but git cannot use. */
export function isProjectId(value: string): boolean {
  return PROJECT_ID.test(value);
}

/**
 * Why `value` is neither a numeric project id nor a project path GitLab could have (`group/sub/app`), or
 * null. The rules are those of GitLab's `Gitlab::PathRegex` (namespace and project path formats): each
 * segment holds only letters, digits, `_`, `-` and `.`, does not start with `-`, does not end in `.git` or
 * `.atom`, and a namespace segment does not end in `.`. On top of them, and whatever GitLab allows, no
 * segment is empty, `.` or `..`: a clone URL is built from the path, and URL resolution would follow a dot
 * segment to another project — or out of the subpath GitLab is installed under.
 */
export function projectPathProblem(value: string): string | null {
  if (value === '') return 'is empty: give the project\'s path (group/app) or its numeric id';
  if (/^[0-9]+$/.test(value)) return isProjectId(value) ? null : 'is not a project id (a positive whole number)';
  const segments = value.split('/');
  if (segments.length < 2) return 'is not a project path: name its group too (group/app), or give its numeric id';
  if (segments.length > MAX_SEGMENTS) return `has more than ${MAX_SEGMENTS} segments, more than GitLab's group nesting allows`;
  for (const [index, segment] of segments.entries()) {
    const isProject = index === segments.length - 1;
    if (segment === '') return 'has an empty segment (a leading, trailing or doubled "/")';
    if (segment === '.' || segment === '..') return `has a "${segment}" segment; name the project by its own path`;
    if (!PATH_CHARACTERS.test(segment)) {
      const bad = [...segment].find((char) => !/[A-Za-z0-9_.-]/.test(char)) ?? '';
      return `contains ${JSON.stringify(bad)}; GitLab paths hold only letters, digits, "_", "-" and "."`;
    }
    if (segment.length > MAX_SEGMENT_LENGTH) return `has a segment longer than ${MAX_SEGMENT_LENGTH} characters`;
    if (segment.startsWith('-')) return `has a segment starting with "-" (${segment})`;
    if (segment.endsWith('.git') || segment.endsWith('.atom')) {
      return `has a segment ending in "${segment.endsWith('.git') ? '.git' : '.atom'}" (${segment})${isProject && segment.endsWith('.git') ? '; leave out the ".git"' : ''}`;
    }
    if (!isProject && segment.endsWith('.')) return `has a group segment ending in "." (${segment})`;
  }
  return null;
}

const MAX_BRANCH_LENGTH = 255;

/**
 * Why `name` is not a branch name git accepts — the rules of `git check-ref-format --branch`: refs/heads/<name>
 * must be a valid ref (no component starting with `.` or ending in `.lock`; no `..`, `@{`, `\`, control
 * characters, space, `~^:?*[`; no leading, trailing or doubled `/`; no trailing `.`), and the name is neither
 * `HEAD` nor starts with `-`. Stricter than git in two ways: `@` alone is refused (git reads it as HEAD), and
 * names longer than 255 characters (more than a ref file name can hold).
 */
export function branchNameProblem(name: string): string | null {
  if (name === '') return 'is empty';
  if (name.length > MAX_BRANCH_LENGTH) return `is longer than ${MAX_BRANCH_LENGTH} characters`;
  if (name === 'HEAD' || name === '@') return 'is what git calls the current commit, not a branch';
  if (name.startsWith('-')) return 'starts with "-"';
  const control = [...name].find((char) => char < ' ' || char === '\x7f');
  if (control !== undefined) return 'contains a control character';
  const bad = [...name].find((char) => ' ~^:?*[\\'.includes(char));
  if (bad !== undefined) return `contains ${JSON.stringify(bad)}`;
  if (name.includes('..')) return 'contains ".."';
  if (name.includes('@{')) return 'contains "@{"';
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return 'has a leading, trailing or doubled "/"';
  if (name.endsWith('.')) return 'ends with "."';
  for (const component of name.split('/')) {
    if (component.startsWith('.')) return `has a part starting with "." (${component})`;
    if (component.endsWith('.lock')) return `has a part ending in ".lock" (${component})`;
  }
  return null;
}
