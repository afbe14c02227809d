/**
 * GitLab runs quick actions (`/merge`, `/approve`, `/move other/project`…) written on a line of their own in a
 * comment or a description, including ones created through the API. A note is an allowed write, so its text is
 * checked: the quick actions that merge or approve need `allowMerge`, `/tag` needs `allowTags`, and those that
 * write outside the project or rewrite a branch on the server are refused (docs/security.md, "Run policy").
 * GitLab ignores commands inside code blocks and quotes; this check does not, so it may refuse a little more.
 */
import { ALLOW, quote, refuse, type Decision, type RunPolicy } from './decision.ts';

/** Merge or approve: review stays with people unless the operator allows merging. */
const MERGING = new Set(['merge', 'approve', 'unapprove', 'submit_review']);

/** Write to other projects (move, clone, link, copy from), create branches or tags past the push rules, or rewrite a branch. */
const REFUSED = new Map<string, string>([
  ['move', 'moves the issue to another project'],
  ['clone', 'copies the issue into another project'],
  ['copy_metadata', 'copies labels and milestone from another issue or merge request'],
  ['duplicate', 'closes the issue as a duplicate and comments on the other one'],
  ['relate', 'links issues, possibly in other projects'],
  ['unrelate', 'unlinks issues, possibly in other projects'],
  ['blocks', 'links issues, possibly in other projects'],
  ['blocked_by', 'links issues, possibly in other projects'],
  ['promote', 'promotes the issue to a group epic'],
  ['promote_to', 'promotes the item outside the project'],
  ['epic', 'adds the issue to a group epic'],
  ['parent', 'sets a parent item, possibly elsewhere'],
  ['set_parent', 'sets a parent item, possibly elsewhere'],
  ['add_child', 'adds child items, possibly from elsewhere'],
  ['create_merge_request', 'creates a branch on the server without the push rules'],
  ['rebase', 'rewrites the source branch on the server'],
]);

/** The quick-action commands on their own lines in `text` (lower-cased, in order). */
export function quickActions(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/^[ \t]*\/([A-Za-z0-9_]+)/gm)) {
    if (match[1] !== undefined) found.push(match[1].toLowerCase());
  }
  return found;
}

/** Decides the quick actions in the text fields of a comment or description (`via` names the endpoint for the message). */
export function decideQuickActions(policy: RunPolicy, texts: readonly string[], via: string): Decision {
  for (const text of texts) {
    for (const command of quickActions(text)) {
      if (MERGING.has(command) && !policy.allowMerge) {
        return refuse('api.merge', `${via} refused: its /${command} quick action would merge or approve, which stays with people; leave it out`);
      }
      if (command === 'tag' && !policy.allowTags) return refuse('push.tag', `${via} refused: its /tag quick action creates a tag, which this run may not`);
      const why = REFUSED.get(command);
      if (why !== undefined) return refuse('api.quick_action', `${via} refused: its /${quote(command)} quick action ${why}; do it by a push or an allowed API call, or leave it to people`);
    }
  }
  return ALLOW;
}
