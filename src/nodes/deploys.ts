// The contract between our nodes lives in src/contract/index.ts. This path stays while other code still
// imports it (the buffer node file): switch it and delete.
export { followDeploys, type DeployHandlers } from '../contract';
