#!/usr/bin/env node
'use strict';
// Writes docs/options.md from the option tables (run `npm run build` first; `npm run docs` does
// both). A test fails while the committed file differs from what this writes.
const fs = require('fs');
const path = require('path');
const { optionsMarkdown } = require('./options');

const root = path.resolve(__dirname, '..');
const types = Object.keys(require(path.join(root, 'package.json'))['node-red'].nodes);
fs.writeFileSync(path.join(root, 'docs', 'options.md'), optionsMarkdown(types));
