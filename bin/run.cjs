#!/usr/bin/env node
'use strict'
// The npm install path: run the one-file bundle that `npm run build` makes (scripts/bundle.ts),
// compiled with the code cache the build saved next to it (load-cjs.cjs). CommonJS, so that
// starting it does not start Node's ES module loader (about 15 ms of CPU).
const {join} = require('node:path')

const {loadCommonJs} = require('./load-cjs.cjs')

loadCommonJs(join(__dirname, '..', 'dist', 'kubectl-encryption.cjs')).exports.main(join(__dirname, '..'))
