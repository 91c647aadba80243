/**
 * How a node finished with a message, as the node that sent it learns it: the vocabulary of the
 * contract between our nodes (src/contract/index.ts), here so that the controllers in src/core can
 * speak it without importing the node layer.
 * - 'ok': done() without an error (the sink: committed).
 * - 'failed': a final failure (done(err), or marked so without logging one error per message).
 * - 'returned': handed back unprocessed (a node closing before its work was confirmed).
 * - 'unacknowledged': the node gave up waiting for the node after it, so nobody knows whether the
 *   events were written.
 */
export type Completion = 'ok' | 'failed' | 'returned' | 'unacknowledged';
