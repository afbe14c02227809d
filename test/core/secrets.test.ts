import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_SECRET_VALUE_BYTES, secretNameProblem, secretValueProblem } from '../../src/core/index.ts';

const accepted = ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'A', '_PRIVATE', 'KEY2', 'ANTHROPIC_BASE_URL', 'NPM_TOKEN', 'GITHUB_TOKEN', 'LDAP_PASSWORD', 'PATHS', 'HOME_DIR', 'ENVIRONMENT'];
for (const name of accepted) {
  test(`accepts ${name}`, () => assert.equal(secretNameProblem(name), null));
}

const refused: [string, RegExp][] = [
  ['', /is empty/],
  ['1KEY', /not an environment variable name/],
  ['MY-KEY', /not an environment variable name/],
  ['MY KEY', /not an environment variable name/],
  ['KEY=1', /not an environment variable name/],
  ['CLÉ', /not an environment variable name/],
  ['anthropic_api_key', /must be upper-case \(ANTHROPIC_API_KEY\)/],
  ['Anthropic_Api_Key', /must be upper-case/],
  ['X'.repeat(129), /longer than 128/],
  ['PATH', /reserved.*which programs run/],
  ['path', /reserved/],
  ['HOME', /reserved/],
  ['USER', /reserved/],
  ['SHELL', /reserved/],
  ['ENV', /reserved.*shell runs the file/],
  ['BASH_ENV', /reserved/],
  ['TMPDIR', /reserved/],
  ['NODE_OPTIONS', /reserved/],
  ['NODE_EXTRA_CA_CERTS', /reserved/],
  ['NODE_USE_ENV_PROXY', /reserved/],
  ['HTTP_PROXY', /reserved.*egress proxy/],
  ['HTTPS_PROXY', /reserved/],
  ['http_proxy', /reserved/],
  ['https_proxy', /reserved/],
  ['NO_PROXY', /reserved/],
  ['no_proxy', /reserved/],
  ['ALL_PROXY', /reserved/],
  ['GITLAB_TOKEN', /reserved.*GITLAB_\*/],
  ['GITLAB_ANYTHING', /reserved/],
  ['gitlab_token', /reserved/],
  ['FORGELINK_RUN_ID', /reserved.*FORGELINK_\*/],
  ['GIT_ASKPASS', /reserved.*GIT_\*/],
  ['GIT_CONFIG_COUNT', /reserved/],
  ['LD_PRELOAD', /reserved.*LD_\*/],
  ['LD_LIBRARY_PATH', /reserved/],
  ['SSL_CERT_FILE', /reserved.*SSL_CERT_\*/],
  ['SSL_CERT_DIR', /reserved/],
  ['PYTHONPATH', /reserved.*PYTHON\*/],
  ['PYTHONSTARTUP', /reserved/],
  ['CURL_CA_BUNDLE', /reserved/],
  ['LANG', /reserved/],
  ['LC_ALL', /reserved/],
  ['BASH_FUNC_X%%', /not an environment variable name/],
  ['BASH_FUNC_X', /reserved/],
  ['PERL5OPT', /reserved/],
  ['GCONV_PATH', /reserved/],
];
for (const [name, pattern] of refused) {
  test(`refuses ${JSON.stringify(name.length > 20 ? `${name.slice(0, 12)}…` : name)}`, () => {
    const problem = secretNameProblem(name);
    assert.ok(problem !== null, `${name} was accepted`);
    assert.match(problem, pattern);
  });
}

const values: [string, RegExp | null][] = [
  ['sk-ant-api03-abcdefgh', null],
  ['12345678', null],
  ['multi\nline\nvalue', null],
  ['x'.repeat(MAX_SECRET_VALUE_BYTES), null],
  ['', /is empty/],
  ['short', /shorter than 8/],
  ['abc\0defghij', /NUL/],
  ['x'.repeat(MAX_SECRET_VALUE_BYTES + 1), /at most 65536 bytes/],
  // 64 KiB counts bytes, not characters.
  ['é'.repeat(MAX_SECRET_VALUE_BYTES / 2 + 1), /at most 65536 bytes/],
];
for (const [value, pattern] of values) {
  test(`value of ${value.length} characters: ${pattern === null ? 'accepted' : pattern.source}`, () => {
    const problem = secretValueProblem(value);
    if (pattern === null) assert.equal(problem, null);
    else {
      assert.ok(problem !== null);
      assert.match(problem, pattern);
      // A refusal never repeats the value.
      if (value.length >= 8) assert.ok(!problem.includes(value));
    }
  });
}
