'use strict';
// Summarises a profile written with BENCH_OLD_GEN_DIR (bench/pipeline.js): MiB sampled per allocating function,
// largest first.   node bench/old-gen-summary.js /tmp/old/bench_f.heapprofile [top]
const fs = require('fs');

const profile = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const top = Number(process.argv[3] || 15);
const bySite = new Map();
let total = 0;
(function walk(node) {
  const f = node.callFrame;
  const site = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
  bySite.set(site, (bySite.get(site) || 0) + node.selfSize);
  total += node.selfSize;
  for (const child of node.children) walk(child);
})(profile.head);
const MiB = (b) => (b / 1048576).toFixed(1).padStart(7);
console.log(`${MiB(total)} MiB sampled in all`);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${MiB(bytes)}  ${site}`);
