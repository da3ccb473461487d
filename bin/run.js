#!/usr/bin/env node
// The CLI for callers that name bin/run.js; the npm install runs bin/run.cjs directly (no ES module loader).
import './run.cjs'
