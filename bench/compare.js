'use strict';
// One pipeline item of npm run bench, the code of another commit (A) against this checkout (B), run
// alternately A B B A so that the host's drift (tens of percent over minutes here) falls on both
// sides alike. A change of a few percent is invisible between two runs of npm run bench; it shows in
// the medians of enough alternated runs.
//
//   npm run bench:compare -- <commit> [item] [groups]     e.g. npm run bench:compare -- HEAD~3 c 5
//
// item: a, a1, b, c, c0, c1, d or e (default c); groups: how many A B B A groups (default 5: 20 runs of c
// take about 3 minutes). A is built in a temporary git worktree beside this one, which shares its
// node_modules; B is this checkout as it is, uncommitted changes included. Prints every run, then
// per side the median events/s and the CPU per event of Node-RED and PostgreSQL, and the median of
// the groups' B/A ratios.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const [commit, item = 'c', groupsArg = '5'] = process.argv.slice(2);
const groups = Number(groupsArg);
if (!commit || !['a', 'a1', 'b', 'c', 'c0', 'c1', 'd', 'e'].includes(item) || !Number.isSafeInteger(groups) || groups < 1) {
  console.error('usage: npm run bench:compare -- <commit> [a|a1|b|c|c0|c1|d|e] [groups]');
  process.exit(2);
}
const root = path.resolve(__dirname, '..');
const run = (cwd, file, args, env = {}) => execFileSync(file, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
const median = (values) => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const worktree = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-compare-'));
execFileSync('git', ['worktree', 'add', '--detach', worktree, commit], { cwd: root, stdio: 'ignore' });
try {
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(worktree, 'node_modules'), 'dir');
  const sides = { A: worktree, B: root };
  for (const dir of Object.values(sides)) run(dir, 'npm', ['run', 'build', '--silent']);
  const runs = { A: [], B: [] };
  const once = (side) => {
    run(sides[side], process.execPath, ['--expose-gc', 'bench/pipeline.js'], { BENCH_ONLY: item, BENCH_ROUNDS: '1' });
    const result = JSON.parse(fs.readFileSync(path.join(sides[side], 'bench', 'results', 'pipeline.json'), 'utf8')).items[item];
    const sample = { rate: result.eventsPerSecond, nodeRed: result.cpu.clientMsPer1k, postgres: result.cpu.postgresMsPer1k };
    runs[side].push(sample);
    console.log(`${side} ${item} ${Math.round(sample.rate).toLocaleString('en-US')}/s, Node-RED ${sample.nodeRed.toFixed(2)} us, PostgreSQL ${sample.postgres.toFixed(2)} us per event`);
  };
  const ratios = [];
  for (let g = 0; g < groups; g++) {
    for (const side of ['A', 'B', 'B', 'A']) once(side);
    const last = (side) => runs[side].slice(-2).reduce((sum, s) => sum + s.rate, 0);
    ratios.push(last('B') / last('A'));
  }
  console.log(`\n${item}, ${groups} groups A B B A; A = ${commit}, B = this checkout`);
  for (const side of ['A', 'B']) {
    const s = runs[side];
    console.log(`${side}: median ${Math.round(median(s.map((x) => x.rate))).toLocaleString('en-US')} events/s, Node-RED ${median(s.map((x) => x.nodeRed)).toFixed(2)} us, PostgreSQL ${median(s.map((x) => x.postgres)).toFixed(2)} us of CPU per event`);
  }
  console.log(`B/A: ${median(ratios).toFixed(3)} (median of the groups' ${ratios.map((r) => r.toFixed(2)).join(' / ')})`);
} finally {
  execFileSync('git', ['worktree', 'remove', '--force', worktree], { cwd: root, stdio: 'ignore' });
}
