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
// The `--help` run is made with V8's JIT tiers off (interpreter only): V8 writes into the cache which
// functions Sparkplug had compiled (68 bytes of flags differed between a run with it and one
// without), tier-up can depend on timing (optimizing compiles finish on other threads), and twice in
// CI the Linux archive differed inside its cache, same size. The flags are set back to this node's
// defaults before the cache is written, since V8 stores a hash of the flags in effect then and
// rejects the cache under others; a fresh process of the same node must accept it before it is kept.
// The cache also keeps the numbers V8 gives functions in the order they are created, Node's own
// included, so scripts/package.ts runs this in a fixed environment until two caches agree.
//
// Not for the lazy libraries: compiled through vm.Script, client-node (14.7 MiB) cost 20 MiB more
// RSS than through require() with or without a cache, for 80 ms less CPU; etcd3 saves ~15 ms.
const {spawnSync} = require('node:child_process')
const {rmSync, writeFileSync} = require('node:fs')
const {join, resolve} = require('node:path')
const {parseArgs} = require('node:util')
const v8 = require('node:v8')

const {loadCommonJs} = require('../bin/load-cjs.cjs')

// scripts/bundle.ts's BUNDLE
const BUNDLE = 'dist/kubectl-encryption.cjs'
const root = join(__dirname, '..')
const {values} = parseArgs({options: {out: {type: 'string'}}})
const out = values.out ? resolve(values.out) : join(root, `${BUNDLE}.cache`)

// V8 flags held during the `--help` run: no Sparkplug, no Maglev, nothing small enough for TurboFan.
const HELD_FLAGS = ['--no-sparkplug', '--no-maglev', '--max-optimized-bytecode-size=0']

/** Each held flag as this node has it by default (`--maglev`, `--no-maglev`, `--max-…=61440`). */
function defaultsOf(flags) {
  const options = spawnSync(process.execPath, ['--v8-options'], {encoding: 'utf8'}).stdout
  return flags.map((flag) => {
    const name = flag.replace(/^--(no-)?/, '').replace(/=.*/, '')
    const found = new RegExp(`^\\s+--${name} \\(.*\\n\\s+type: \\w+\\s+default: (--\\S+)`, 'm').exec(options)
    if (!found) throw new Error(`${process.execPath} --v8-options does not list --${name}`)
    return found[1]
  })
}

/** Whether V8 in a fresh process of this node, with no flags, accepts `cache` for `file`. */
function acceptedByFreshProcess(file, cache) {
  const check = `const {Script} = require('node:vm'); const {readFileSync} = require('node:fs');
    const [loader, file, cache] = process.argv.slice(1);
    const source = require(loader).wrapCommonJs(readFileSync(file, 'latin1'));
    process.exitCode = new Script(source, {filename: file, cachedData: readFileSync(cache)}).cachedDataRejected ? 1 : 0`
  const loader = join(root, 'bin/load-cjs.cjs')
  return spawnSync(process.execPath, ['-e', check, loader, file, cache], {stdio: 'inherit'}).status === 0
}

async function main() {
  const defaults = defaultsOf(HELD_FLAGS)
  for (const flag of HELD_FLAGS) v8.setFlagsFromString(flag)
  const bundle = loadCommonJs(join(root, BUNDLE), {useCache: false})
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = () => true // the help text
  try {
    await bundle.exports.main(root, ['--help'])
  } finally {
    process.stdout.write = write
  }
  for (const flag of defaults) v8.setFlagsFromString(flag)
  const data = bundle.script.createCachedData()
  writeFileSync(out, data)
  if (!acceptedByFreshProcess(join(root, BUNDLE), out)) {
    rmSync(out)
    throw new Error(`V8 rejects the code cache made for ${BUNDLE} (a flag left changed?)`)
  }
  console.log(`${out}: ${(data.length / 1024 / 1024).toFixed(1)} MiB`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
