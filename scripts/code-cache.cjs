'use strict'
// Saves a V8 code cache next to the bundle (`<file>.cache`), which bin/load-cjs.cjs hands to V8 on
// the npm install path. Runs after scripts/bundle.ts in `npm run build`. A cache holds the
// functions compiled when it is made, so it is made after `--help` has run.
//
// `--out FILE` writes it elsewhere: scripts/package.ts runs this script with the standalone
// executable's node (a cache fits only the V8 that made it) for the executable's cache asset
// (bin/sea-main.cjs). Plain CommonJS, run by node alone: under tsx (a loader on another thread)
// the cache came out different from run to run, and the packaged archives must not.
//
// Not for the lazy libraries: compiled through vm.Script, client-node (14.7 MiB) cost 20 MiB more
// RSS than through require() with or without a cache, for 80 ms less CPU; etcd3 saves ~15 ms.
const {writeFileSync} = require('node:fs')
const {join, resolve} = require('node:path')
const {parseArgs} = require('node:util')

const {loadCommonJs} = require('../bin/load-cjs.cjs')

// scripts/bundle.ts's BUNDLE
const BUNDLE = 'dist/kubectl-encryption.cjs'
const root = join(__dirname, '..')
const {values} = parseArgs({options: {out: {type: 'string'}}})
const out = values.out ? resolve(values.out) : join(root, `${BUNDLE}.cache`)

async function main() {
  const bundle = loadCommonJs(join(root, BUNDLE), {useCache: false})
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = () => true // the help text
  try {
    await bundle.exports.main(root, ['--help'])
  } finally {
    process.stdout.write = write
  }
  const data = bundle.script.createCachedData()
  writeFileSync(out, data)
  console.log(`${out}: ${(data.length / 1024 / 1024).toFixed(1)} MiB`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
