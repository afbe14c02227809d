export { startRunBroker, type RunBroker, type RunBrokerInput } from './run-broker.ts';
export { createBroker, receivePackRefusal, type BrokeredCredential, type BrokerOptions, type BrokerRecord, type GuardDecision, type GuardRequest } from './proxy.ts';
export { createRunCa, type RunCa } from './ca.ts';
export { gitLabSurrogate, secretSurrogate } from './surrogates.ts';
export { createdByWrite } from './created.ts';
export { runGuard, type AncestryCheck } from './run-guard.ts';
export { type RunPolicy, type PolicyOptions, resolvePolicyOptions, PolicyOptionsSchema } from './policy.ts';
