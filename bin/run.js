#!/usr/bin/env node
// The npm install path: run the one-file bundle that `npm run build` makes (scripts/bundle.ts).
import {createRequire} from 'node:module'
import {fileURLToPath} from 'node:url'

const require = createRequire(import.meta.url)
await require('../dist/kubectl-encryption.cjs').main(fileURLToPath(new URL('..', import.meta.url)))
