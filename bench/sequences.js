#!/usr/bin/env node
'use strict';
// A flood of distinct topics through the sequence numbering: memory and the longest stall of the
// event loop (issue: "a flood of distinct topics must not stall the event loop more than 100 ms").
//
//   npm run bench:sequences           (builds first)
//   node bench/sequences.js [topics]  (needs nodes/lib from `npm run build`; default 1,000,000)
//
// Numbers `topics` distinct topics at the rate the event loop allows (in turns of 10,000, as
// messages arrive), saves the journal every second like the nodes do, and prints the stamper's
// memory (heap after a full collection), the journal's size and the longest event-loop delay seen
// (perf_hooks.monitorEventLoopDelay), against the same run numbering 50 topics only.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { monitorEventLoopDelay } = require('perf_hooks');

const lib = path.join(__dirname, '..', 'nodes', 'lib', 'core');
let SequenceStamper, SequenceJournal;
try {
  ({ SequenceStamper, SequenceJournal } = require(path.join(lib, 'readings', 'sequence.js')));
} catch (err) {
  console.error(`cannot load ${lib} (run \`npm run build\` first): ${err.message}`);
  process.exit(1);
}

const TOPICS = Math.max(1000, Number(process.argv[2]) || 1_000_000);
const MESSAGES = Math.max(TOPICS, 2_000_000);
const gc = typeof global.gc === 'function' ? global.gc : () => undefined;
const mib = (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

async function run(label, topicCount) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-bench-seq-'));
  const file = path.join(dir, 'node.sequences');
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const stamper = new SequenceStamper();
  const journal = new SequenceJournal(file);
  journal.open(stamper);
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  let longestSave = 0;
  const saver = setInterval(() => {
    const t = process.hrtime.bigint();
    journal.save(stamper);
    longestSave = Math.max(longestSave, Number(process.hrtime.bigint() - t) / 1e6);
  }, 1000);
  const started = Date.now();
  for (let i = 0; i < MESSAGES; ) {
    const end = Math.min(MESSAGES, i + 10_000);
    for (; i < end; i++) stamper.reserve(`plant/line${i % topicCount}/sensor`, 1);
    await new Promise((resolve) => setImmediate(resolve));
  }
  // One more save interval, so the journal's cost at the end is in the figures too.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  clearInterval(saver);
  delay.disable();
  const seconds = (Date.now() - started) / 1000;
  gc();
  const heap = process.memoryUsage().heapUsed - heapBefore;
  const t = process.hrtime.bigint();
  journal.close(stamper);
  const closeMs = Number(process.hrtime.bigint() - t) / 1e6;
  const bytes = fs.statSync(file).size;
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(
    `${label.padEnd(22)} ${String(topicCount).padStart(9)} topics, ${MESSAGES.toLocaleString('en-US')} messages in ${seconds.toFixed(1)} s: ` +
      `${stamper.sources} held, ${stamper.forgotten} forgotten; heap +${mib(heap)}; journal ${mib(bytes)}; ` +
      `longest save ${longestSave.toFixed(0)} ms, close ${closeMs.toFixed(0)} ms, max event-loop delay ${(delay.max / 1e6).toFixed(0)} ms`
  );
  return { heap, maxDelayMs: delay.max / 1e6 };
}

(async () => {
  const few = await run('steady line', 50);
  const flood = await run('flood of topics', TOPICS);
  console.log(`flood: max event-loop delay ${flood.maxDelayMs.toFixed(0)} ms (target <= 100), heap ${mib(flood.heap)} (50 topics: ${mib(few.heap)})`);
})();
