/**
 * `config validate` checked by the real kube-apiserver (issue 12, item 7). Every file of the
 * validation catalogue (test/fixtures/config-catalogue.ts) is given to the real kube-apiserver of each
 * release the sandbox builds (test/sandbox/kube-binaries.ts; SANDBOX_KUBE_VERSION narrows the run to
 * one) and to `kubectl-encryption config validate FILE -o json`: the verdict and the whole message
 * must be the same, and the same as the catalogue says.
 *
 * How the apiserver gives its verdict. It loads --encryption-provider-config in BuildGenericConfig
 * (k8s.io/kubernetes pkg/controlplane/apiserver/config.go: s.Etcd.ApplyWithStorageFactoryTo ->
 * maybeApplyResourceTransformers -> encryptionconfig.LoadEncryptionConfig, which reads, decodes,
 * validates and builds the transformers) and returns its error unwrapped up to component-base's
 * cli.Run, which logs `"command failed" err=<the error>` and exits 1. The very next step of
 * BuildGenericConfig is s.Authentication.ApplyTo, which reads --token-auth-file
 * (pkg/kubeapiserver/authenticator/config.go: newAuthenticatorFromTokenFile). We point that flag at a
 * file that does not exist, so a file the apiserver accepts ends the run just as cheaply and
 * deterministically, with `err="open <token file>: no such file or directory"`: that line proves the
 * encryption configuration was loaded and its transformers built. No etcd is needed (nothing dials it
 * before then) and no process has to be killed.
 */
import {freePort} from '../helpers/local-etcd.js'
import {execFile, spawn} from 'node:child_process'
import {createPublicKey} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {
  catalogue,
  catalogueSecrets,
  caseFileName,
  type CatalogueCase,
  expectedMessage,
} from '../fixtures/config-catalogue.js'
import {makeTls} from '../helpers/tls.js'
import {ensureKubeBinaries, type KubeRelease, kubeReleases, selectedRelease} from '../sandbox/kube-binaries.js'
import {repoRoot} from '../sandbox/layout.js'

const run = promisify(execFile)
const cli = path.join(repoRoot, 'bin', 'run.js')

/** Every release the sandbox builds, or the one SANDBOX_KUBE_VERSION names. */
const releases: KubeRelease[] = process.env.SANDBOX_KUBE_VERSION ? [selectedRelease()] : kubeReleases

/** Apiservers at once: each needs ~0.3 s of CPU and ~1 s of wall time; the machine has 2 cores. */
const APISERVERS_AT_ONCE = 4
/** CLI runs at once: each is ~0.4 s of CPU. */
const CLIS_AT_ONCE = 4

interface Verdict {
  valid: boolean
  /** The error message, normalised (see `normalise`); '' when valid. */
  message: string
}

/** Runs `job` over `items`, `width` at a time. */
async function pool<T, R>(items: readonly T[], width: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await job(items[i]!)
    }
  }
  await Promise.all(Array.from({length: Math.min(width, items.length)}, worker))
  return results
}

/** Go's strconv.Unquote for the double-quoted strings klog writes (strconv.Quote). */
function goUnquote(quoted: string): string {
  const body = quoted.slice(1, -1)
  const bytes: number[] = []
  const utf8 = (text: string) => bytes.push(...Buffer.from(text, 'utf8'))
  const simple: Record<string, string> = {
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    '\\': '\\',
    '"': '"',
    "'": "'",
  }
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!
    if (ch !== '\\') {
      utf8(ch)
      continue
    }
    const e = body[++i]!
    if (e in simple) utf8(simple[e]!)
    else if (e === 'x') bytes.push(Number.parseInt(body.slice(i + 1, (i += 2) + 1), 16))
    else if (e === 'u') utf8(String.fromCodePoint(Number.parseInt(body.slice(i + 1, (i += 4) + 1), 16)))
    else if (e === 'U') utf8(String.fromCodePoint(Number.parseInt(body.slice(i + 1, (i += 8) + 1), 16)))
    else if (/[0-7]/.test(e)) bytes.push(Number.parseInt(body.slice(i, (i += 2) + 1), 8))
    else throw new Error(`unknown escape \\${e} in ${quoted}`)
  }
  return Buffer.from(bytes).toString('utf8')
}

/**
 * The `err` of klog's `"command failed"` line (k8s.io/klog/v2 internal/serialize writeStringValue):
 * `err="<strconv.Quote>"` on one line, or for a value with line breaks `err=<` followed by the value's
 * lines each indented by a tab, closed by a line ` >`.
 */
function commandFailedError(log: string): string | undefined {
  const lines = log.split('\n')
  const at = lines.findIndex((l) => l.includes('"command failed" err='))
  if (at < 0) return undefined
  const line = lines[at]!
  const rest = line.slice(line.indexOf('"command failed" err=') + '"command failed" err='.length)
  if (rest.startsWith('"')) return goUnquote(rest)
  if (rest !== '<') throw new Error(`unexpected klog value: ${line}`)
  const value: string[] = []
  for (const l of lines.slice(at + 1)) {
    if (l === ' >') break
    value.push(l.slice(1))
  }
  return value.join('\n')
}

/**
 * Only what must differ: where the apiserver prints key material, `config validate` prints
 * "REDACTED" or leaves it out (docs/kubernetes-behaviour.md §14.6), and that is the one difference
 * allowed. A provider echo's `"Secret":"<key>"`, a key that ended up as a field name, and the whole
 * file the apiserver quotes when `kind` or `apiVersion` is missing (serializer/json.go:
 * `Object 'Kind' is missing in '<data>'`). File paths need nothing: both read the same file.
 */
function normalise(message: string, file: string): string {
  let out = message.replace(/"Secret":"(?:[^"\\]|\\.)*"/g, '"Secret":"REDACTED"')
  for (const field of ['Kind', 'apiVersion'])
    out = out.replace(
      `Object '${field}' is missing in '${file}'`,
      `Object '${field}' is missing in the file (content not shown)`,
    )
  for (const secret of catalogueSecrets) out = out.replaceAll(secret, 'REDACTED')
  return out
}

/** A log as safe to print as the catalogue's own texts: its test keys replaced. */
function redact(text: string): string {
  return catalogueSecrets.reduce((out, secret) => out.replaceAll(secret, '<test key>'), text)
}

interface Fixture {
  dir: string
  tlsCert: string
  tlsKey: string
  /** The public half of tlsKey: --service-account-key-file takes public keys only. */
  publicKey: string
  missingTokenFile: string
}

async function apiserverVerdict(binary: string, fx: Fixture, c: CatalogueCase, file: string): Promise<Verdict> {
  const gates = Object.entries(c.apiserver?.featureGates ?? {}).map(([k, v]) => `${k}=${v}`)
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const args = [
      `--encryption-provider-config=${file}`,
      ...(c.apiserver?.automaticReload ? ['--encryption-provider-config-automatic-reload=true'] : []),
      ...(gates.length > 0 ? [`--feature-gates=${gates.join(',')}`] : []),
      // The least the apiserver needs to get as far as the encryption configuration:
      '--etcd-servers=http://127.0.0.1:1', // required; never dialled before the verdict
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${fx.publicKey}`,
      `--service-account-signing-key-file=${fx.tlsKey}`,
      '--service-cluster-ip-range=10.96.0.0/12',
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--tls-cert-file=${fx.tlsCert}`,
      `--tls-private-key-file=${fx.tlsKey}`,
      // The step right after the encryption configuration: see the comment at the top.
      `--token-auth-file=${fx.missingTokenFile}`,
    ]
    const {code, log} = await new Promise<{code: number | null; log: string}>((resolve, reject) => {
      const child = spawn(binary, args, {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {PATH: process.env.PATH ?? '/usr/bin:/bin'},
      })
      let log = ''
      child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d))
      // It exits on its own either way; this only guards against a hang.
      const guard = setTimeout(() => child.kill('SIGKILL'), 120_000)
      child.once('error', reject)
      child.once('close', (code) => {
        clearTimeout(guard)
        resolve({code, log})
      })
    })
    const err = commandFailedError(log)
    // Another process took the port between our probe and the apiserver's bind: try another.
    if (err?.includes('address already in use') && attempt < 5) continue
    if (code === 0 || err === undefined)
      throw new Error(`kube-apiserver exited ${code} without "command failed":\n${redact(log).slice(-3000)}`)
    if (err === `open ${fx.missingTokenFile}: no such file or directory`) return {valid: true, message: ''}
    return {
      valid: false,
      message: normalise(err, typeof c.file === 'string' ? c.file : Buffer.from(c.file).toString('utf8')),
    }
  }
}

interface CliVerdict extends Verdict {
  code: number
  warnings: string[]
  output: string
}

async function cliVerdict(release: KubeRelease, c: CatalogueCase, file: string): Promise<CliVerdict> {
  const [, minor] = release.version.slice(1).split('.')
  const gates = Object.entries(c.apiserver?.featureGates ?? {}).map(([k, v]) => `${k}=${v}`)
  const args = [cli, 'config', 'validate', file, '-o', 'json', '--target-version', `1.${minor}`]
  if (gates.length > 0) args.push('--feature-gates', gates.join(','))
  if (c.apiserver?.automaticReload) args.push('--automatic-reload')
  let stdout: string
  let stderr: string
  let code = 0
  try {
    ;({stdout, stderr} = await run(process.execPath, args, {cwd: repoRoot}))
  } catch (error) {
    ;({stdout, stderr, code} = error as {stdout: string; stderr: string; code: number})
  }
  const doc = JSON.parse(stdout) as {valid: boolean; message?: string; warnings: string[]}
  return {valid: doc.valid, message: doc.message ?? '', code, warnings: doc.warnings, output: stdout + stderr}
}

describe.each(releases.map((r) => [r.version, r] as const))(
  'config validate against the real kube-apiserver %s',
  (version, release) => {
    const results = new Map<CatalogueCase, {file: string; apiserver: Verdict; cli: CliVerdict}>()
    let fx: Fixture

    beforeAll(async () => {
      if (!existsSync(path.join(repoRoot, 'dist', 'commands')))
        throw new Error('the built CLI is missing: run `npm run build` first')
      // Built from source when not cached, as the sandbox does (about 20 min on 2 cores, once per release).
      const binaries = await ensureKubeBinaries((m) => process.stderr.write(`[kube ${version}] ${m}\n`), release)
      const dir = mkdtempSync(path.join(tmpdir(), `config-crosscheck-${version}-`))
      const tls = makeTls(dir)
      const publicKey = path.join(dir, 'server.pub')
      writeFileSync(publicKey, createPublicKey(readFileSync(tls.serverKey)).export({type: 'spki', format: 'pem'}))
      fx = {
        dir,
        tlsCert: tls.serverCert,
        tlsKey: tls.serverKey,
        publicKey,
        missingTokenFile: path.join(dir, 'no-such-token-file.csv'),
      }
      mkdirSync(path.join(dir, 'cases'), {mode: 0o700})
      const files = catalogue.map((c) => {
        const file = path.join(dir, 'cases', caseFileName(c))
        writeFileSync(file, c.file, {mode: 0o600})
        return file
      })
      const t0 = Date.now()
      const [servers, clis] = await Promise.all([
        pool(catalogue, APISERVERS_AT_ONCE, (c) =>
          apiserverVerdict(binaries.apiserver, fx, c, files[catalogue.indexOf(c)]!),
        ),
        pool(catalogue, CLIS_AT_ONCE, (c) => cliVerdict(release, c, files[catalogue.indexOf(c)]!)),
      ])
      for (const [i, c] of catalogue.entries()) results.set(c, {file: files[i]!, apiserver: servers[i]!, cli: clis[i]!})
      process.stderr.write(
        `[crosscheck ${version}] ${catalogue.length} files through kube-apiserver and config validate in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
      )
    }, 60 * 60_000)

    afterAll(() => {
      if (fx) rmSync(fx.dir, {recursive: true, force: true})
    })

    it.each(catalogue.map((c) => [`${c.family}: ${c.name}`, c] as const))('%s', (_title, c) => {
      const r = results.get(c)
      if (!r) throw new Error('no result: see the beforeAll error')
      // The real apiserver is the judge; then the catalogue must say the same, so unit tests check the truth.
      const upTo = c.knownDifference
        ? r.apiserver.message.indexOf(c.knownDifference.upTo) + c.knownDifference.upTo.length
        : undefined
      if (c.knownDifference)
        process.stderr.write(
          `[crosscheck ${version}] known difference, ${c.name}: ${c.knownDifference.reason}\n  apiserver: ${r.apiserver.message}\n  ours:      ${r.cli.message}\n`,
        )
      expect({valid: r.cli.valid, message: r.cli.message.slice(0, upTo)}, 'config validate vs kube-apiserver').toEqual({
        ...r.apiserver,
        message: r.apiserver.message.slice(0, upTo),
      })
      // Exit 0 for a valid file, 3 for an invalid one (src/errors.ts EXIT.precondition).
      expect(r.cli.code).toBe(r.cli.valid ? 0 : 3)
      expect(r.apiserver.message || null, 'the catalogue vs kube-apiserver').toBe(expectedMessage(c, r.file))
      expect(
        catalogueSecrets.filter((s) => r.cli.output.includes(s)),
        'key material in the CLI output',
      ).toEqual([])
    })
  },
)
