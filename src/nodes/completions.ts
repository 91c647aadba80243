// The contract between our nodes lives in src/contract/index.ts. This path stays while other code still
// imports it (the buffer and sink node files, test/support/node-red.ts): switch those and delete.
export { acceptRecordGroups, canHandBack, declareCustody, heldBy, markCompletion, markReleased, recordGroupLimit, watchCompletions, type Completion } from '../contract';
