export { startRunBroker, type RunBroker, type RunBrokerInput } from './run-broker.ts';
export { createBroker, commandSectionEnd, type BrokeredCredential, type BrokerOptions, type BrokerRecord, type GuardDecision, type GuardRequest } from './proxy.ts';
export { createRunCa, type RunCa } from './ca.ts';
export { gitLabSurrogate, secretSurrogate } from './surrogates.ts';
