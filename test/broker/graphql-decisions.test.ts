import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideGitLabRequest, decideGraphql, type Decision } from '../../src/broker/policy.ts';
import { runPolicy } from './fixtures.ts';

function verdict(decision: Decision): string {
  return decision.allow ? 'allow' : decision.rule;
}

const body = (query: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ query, ...extra });

for (const [name, request, expected] of [
  ['a shorthand query', body('{ currentUser { username } }'), 'allow'],
  ['a named query with variables', body('query Q($p: ID!) { project(fullPath: $p) { name } }', { variables: { p: 'g/a' } }), 'allow'],
  ['a query with a fragment', body('query { currentUser { ...F } } fragment F on UserCore { username }'), 'allow'],
  ['a mutation', body('mutation { createIssue(input: {projectPath: "g/a", title: "x"}) { errors } }'), 'graphql.mutation'],
  ['a subscription', body('subscription { issuableAssigneesUpdated(issuableId: "x") { __typename } }'), 'graphql.mutation'],
  ['a mutation after a query, operationName naming the query', body('query A { a } mutation B { b }', { operationName: 'A' }), 'graphql.mutation'],
  ['"mutation" inside a string and a comment', body('# mutation {\nquery { search(q: "mutation { x }") { id } }'), 'allow'],
  ['"mutation" inside a block string', body('query { search(q: """\nmutation { x }\n""") { id } }'), 'allow'],
  ['a mutation after a comment', body('# just a query\nmutation { x }'), 'graphql.mutation'],
  ['a mutation with odd whitespace', body('\ufeff\t,mutation\n{ x }'), 'graphql.mutation'],
  ['a batch with a mutation', JSON.stringify([{ query: '{ a }' }, { query: 'mutation { b }' }]), 'graphql.mutation'],
  ['a batch of queries', JSON.stringify([{ query: '{ a }' }, { query: 'query { b }' }]), 'allow'],
  ['a document that does not parse', body('query { a '), 'graphql.parse'],
  ['a type definition', body('type X { a: Int }'), 'graphql.parse'],
  ['a persisted query without text', JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: 'ab' } } }), 'graphql.parse'],
  ['a query that is not a string', JSON.stringify({ query: ['mutation { b }'] }), 'graphql.parse'],
  ['a body that is not JSON', 'mutation { b }', 'graphql.parse'],
  ['an empty body', '', 'graphql.parse'],
  ['a JSON string body', '"{ a }"', 'graphql.parse'],
] as const) {
  test(`graphql: ${name} → ${expected}`, () => assert.equal(verdict(decideGraphql(request, { contentType: 'application/json' })), expected));
}

test('graphql: GET with the query in the URL', () => {
  assert.equal(verdict(decideGraphql(null, { query: 'query=%7B%20a%20%7D' })), 'allow');
  assert.equal(verdict(decideGraphql(null, { query: new URLSearchParams({ query: 'mutation { b }' }) })), 'graphql.mutation');
});

test('graphql: a mutation in the query string of a POST with a harmless body is still seen', () => {
  assert.equal(verdict(decideGraphql(body('{ a }'), { query: new URLSearchParams({ query: 'mutation { b }' }), contentType: 'application/json' })), 'graphql.mutation');
});

test('graphql: form-encoded bodies are read (Rails reads them too)', () => {
  const form = new URLSearchParams({ query: 'mutation { b }' }).toString();
  assert.equal(verdict(decideGraphql(form, { contentType: 'application/x-www-form-urlencoded' })), 'graphql.mutation');
  assert.equal(verdict(decideGraphql(form, { contentType: 'text/plain' })), 'graphql.parse');
});

test('graphql: bytes are read as UTF-8; invalid UTF-8 is refused', () => {
  assert.equal(verdict(decideGraphql(new TextEncoder().encode(body('mutation { b }')))), 'graphql.mutation');
  assert.equal(verdict(decideGraphql(new Uint8Array([0x7b, 0xff, 0x7d]))), 'graphql.parse');
});

test('graphql: a huge document is refused, not parsed at length', () => {
  const huge = `{ ${'a '.repeat(30_000)}}`;
  assert.equal(verdict(decideGraphql(body(huge))), 'graphql.parse');
});

test('graphql through decideGitLabRequest: GET reads the URL, POST the body', () => {
  const policy = runPolicy();
  assert.equal(verdict(decideGitLabRequest(policy, { method: 'GET', path: '/api/graphql', query: 'query=mutation%20%7Bb%7D' })), 'graphql.mutation');
  assert.equal(verdict(decideGitLabRequest(policy, { method: 'POST', path: '/api/graphql', body: body('{ a }'), contentType: 'application/json' })), 'allow');
  assert.equal(verdict(decideGitLabRequest(policy, { method: 'POST', path: '/api/graphql', body: body('mutation { a }'), contentType: 'application/json' })), 'graphql.mutation');
});
