/**
 * The prose links instead of repeating, so a broken link loses a fact: every relative link in the
 * README and the docs must name a file that exists and, with `#anchor`, a heading in it (GitHub's
 * anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered).
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..');
const documents = ['README.md', 'bench/README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The anchors GitHub gives the headings of a markdown file (headings inside code fences are not headings). */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const slug = heading[1].toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** Markdown links `[text](target)` outside code, with their line numbers. */
function linksOf(text: string): { target: string; line: number }[] {
  const links: { target: string; line: number }[] = [];
  let fenced = false;
  text.split('\n').forEach((line, i) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) return;
    const withoutCode = line.replace(/`[^`]*`/g, '');
    for (const m of withoutCode.matchAll(/\]\(([^)\s]+)\)/g)) links.push({ target: m[1], line: i + 1 });
  });
  return links;
}

describe('the documentation', function () {
  for (const doc of documents) {
    it(`${doc}: every relative link and anchor resolves`, function () {
      const text = fs.readFileSync(path.join(root, doc), 'utf8');
      const broken: string[] = [];
      for (const { target, line } of linksOf(text)) {
        if (/^[a-z]+:/i.test(target)) continue; // http(s), mailto: not checked here
        const [file, anchor] = target.split('#');
        const resolved = file === '' ? path.join(root, doc) : path.resolve(path.dirname(path.join(root, doc)), file);
        if (!fs.existsSync(resolved)) {
          broken.push(`${doc}:${line} ${target}: no such file`);
          continue;
        }
        if (anchor !== undefined && !anchorsOf(fs.readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${doc}:${line} ${target}: no such heading`);
      }
      assert.deepEqual(broken, []);
    });
  }

  it('checks real links: a made-up anchor is reported', function () {
    assert.ok(anchorsOf('## The pipeline: `npm run bench`\n').has('the-pipeline-npm-run-bench'));
    assert.ok(anchorsOf("## The sink's writer\n## The sink's writer\n").has('the-sinks-writer-1'));
    assert.ok(!anchorsOf('```\n# not a heading\n```\n').has('not-a-heading'));
    assert.deepEqual(linksOf('see [a](docs/a.md#x) and `[b](c)`'), [{ target: 'docs/a.md#x', line: 1 }]);
  });
});
