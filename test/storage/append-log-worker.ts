/**
 * A separate process appending to one run's log, for the concurrency test in runs.test.ts.
 * Arguments: storage options as JSON, run id, worker name, number of single-entry appends.
 */
import { openStorage } from '../../src/storage/index.ts';

const [optionsJson, runId, name, countText] = process.argv.slice(2);
if (optionsJson === undefined || runId === undefined || name === undefined || countText === undefined) {
  throw new Error('usage: append-log-worker.ts <options-json> <run-id> <name> <count>');
}
const storage = await openStorage(JSON.parse(optionsJson));
try {
  for (let i = 0; i < Number(countText); i++) {
    await storage.runs.appendLog(runId, [{ at: new Date().toISOString(), stream: 'stdout', text: `${name}:${i}` }]);
  }
} finally {
  await storage.close();
}
