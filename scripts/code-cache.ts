// Saves V8 code caches next to the bundle and the lazy libraries (`<file>.cache`), which
// bin/load-cjs.cjs hands to V8 on the npm install path. Runs after scripts/bundle.ts in
// `npm run build`. A cache holds the functions compiled when it is made, so it is made after the
// code has run: the bundle after `--help`, a library after it was loaded.
import {readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {createRequire} from 'node:module'
import {BUNDLE, VENDOR_DIR} from './bundle.js'

interface Loaded {
  exports: {main?: (root: string, argv: string[]) => Promise<unknown>}
  script: {createCachedData(): Buffer}
}

const root = fileURLToPath(new URL('..', import.meta.url))
const {loadCommonJs: load} = createRequire(import.meta.url)('../bin/load-cjs.cjs') as {loadCommonJs: (file: string, options: {useCache: boolean}) => Loaded}

const bundle = load(join(root, BUNDLE), {useCache: false})
const write = process.stdout.write.bind(process.stdout)
process.stdout.write = () => true // the help text
try {
  await bundle.exports.main!(root, ['--help'])
} finally {
  process.stdout.write = write
}
const caches: Array<[string, Buffer]> = [[join(root, BUNDLE), bundle.script.createCachedData()]]
for (const file of readdirSync(join(root, VENDOR_DIR)).filter((f) => f.endsWith('.cjs'))) {
  const filename = join(root, VENDOR_DIR, file)
  caches.push([filename, load(filename, {useCache: false}).script.createCachedData()])
}
for (const [file, data] of caches) {
  writeFileSync(`${file}.cache`, data)
  console.log(`${file.slice(root.length)}.cache: ${(data.length / 1024 / 1024).toFixed(1)} MiB`)
}
