/**
 * The one poller of the tests: waits until `predicate` holds, or fails naming what it waited for.
 * A predicate that answers at once (in-process state) is asked every 5 ms; one that returns a
 * promise (a Node-RED process's stats, a query) every 200 ms, so polling does not load the
 * process under test; `everyMs` sets another pace.
 */
export async function waitUntil(label: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 20_000, everyMs?: number): Promise<void> {
  const start = Date.now();
  for (;;) {
    const answer = predicate();
    const asynchronous = typeof answer !== 'boolean';
    if (await answer) return;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs ?? (asynchronous ? 200 : 5)));
  }
}
