/**
 * Gitlab::PushOptions (lib/gitlab/push_options.rb): `namespace.key=value` options, `mr` as an alias
 * of `merge_request`, unknown keys dropped, a missing value meaning `true`, and some keys
 * collecting every value given.
 */

const VALID_KEYS: Record<string, readonly string[]> = {
  merge_request: [
    'assign',
    'create',
    'description',
    'draft',
    'label',
    'merge_when_pipeline_succeeds',
    'milestone',
    'remove_source_branch',
    'target',
    'target_project',
    'title',
    'unassign',
    'unlabel',
  ],
  ci: ['skip', 'variable'],
  integrations: ['skip_ci'],
  secret_detection: ['skip_all'],
};

const MULTI_VALUE = new Set(['ci.variable', 'merge_request.label', 'merge_request.unlabel', 'merge_request.assign', 'merge_request.unassign']);

const ALIASES: Record<string, string> = { mr: 'merge_request' };

export type PushOptionValue = string | true | string[];
export type PushOptions = Record<string, Record<string, PushOptionValue>>;

export function parsePushOptions(raw: readonly string[]): PushOptions {
  const options: PushOptions = {};
  for (const option of raw) {
    const match = /^([^.]+)\.([^=]+)=?(.*)$/s.exec(option);
    if (!match) continue;
    const rawNamespace = (match[1] ?? '').trim();
    const namespace = ALIASES[rawNamespace] ?? rawNamespace;
    const key = (match[2] ?? '').trim();
    const text = (match[3] ?? '').trim();
    if (!VALID_KEYS[namespace]?.includes(key)) continue;
    const value: string | true = text === '' ? true : text;
    const group = (options[namespace] ??= {});
    if (MULTI_VALUE.has(`${namespace}.${key}`)) {
      const list = group[key];
      const values = Array.isArray(list) ? list : [];
      if (!values.includes(String(value))) values.push(String(value));
      group[key] = values;
    } else {
      group[key] = value;
    }
  }
  return options;
}

/** A single-valued option as text (`true` for a bare flag), or undefined when absent. */
export function optionText(group: Record<string, PushOptionValue> | undefined, key: string): string | undefined {
  const value = group?.[key];
  if (value === undefined || Array.isArray(value)) return undefined;
  return value === true ? 'true' : value;
}

export function optionFlag(group: Record<string, PushOptionValue> | undefined, key: string): boolean | undefined {
  const value = group?.[key];
  if (value === undefined || Array.isArray(value)) return undefined;
  return value === true || !['false', '0', 'no', 'off'].includes(value.toLowerCase());
}

export function optionList(group: Record<string, PushOptionValue> | undefined, key: string): string[] | undefined {
  const value = group?.[key];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value : [value === true ? 'true' : value];
}
