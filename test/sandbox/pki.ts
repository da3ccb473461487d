// Certificates made per run with the system `openssl` (no passphrases), laid out as kubeadm does
// under /etc/kubernetes/pki. EC P-256 keys keep a cold start fast; kubeadm also supports ECDSA.
import {execFile} from 'node:child_process'
import {mkdirSync, writeFileSync, chmodSync, copyFileSync} from 'node:fs'
import path from 'node:path'
import {promisify} from 'node:util'

const run = promisify(execFile)

export interface CertAuthority {
  cert: string
  key: string
}

export interface LeafSpec {
  /** Output path without extension: writes <out>.crt and <out>.key */
  out: string
  subject: {cn: string; o?: string[]}
  dns?: string[]
  ips?: string[]
  usage: Array<'server' | 'client'>
}

function subjectString(subject: {cn: string; o?: string[]}): string {
  const esc = (s: string) => s.replace(/[/\\+,=]/g, (c) => `\\${c}`)
  return `${(subject.o ?? []).map((o) => `/O=${esc(o)}`).join('')}/CN=${esc(subject.cn)}`
}

export async function makeCa(out: string, cn: string): Promise<CertAuthority> {
  mkdirSync(path.dirname(out), {recursive: true})
  const cert = `${out}.crt`
  const key = `${out}.key`
  await run('openssl', [
    'req',
    '-x509',
    '-new',
    '-noenc',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '3650',
    '-subj',
    subjectString({cn}),
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign',
  ])
  chmodSync(key, 0o600)
  return {cert, key}
}

export async function issue(ca: CertAuthority, spec: LeafSpec): Promise<{cert: string; key: string}> {
  mkdirSync(path.dirname(spec.out), {recursive: true})
  const cert = `${spec.out}.crt`
  const key = `${spec.out}.key`
  const eku = spec.usage.map((u) => (u === 'server' ? 'serverAuth' : 'clientAuth')).join(',')
  const sans = [...(spec.dns ?? []).map((d) => `DNS:${d}`), ...(spec.ips ?? []).map((i) => `IP:${i}`)]
  const args = [
    'req',
    '-x509',
    '-new',
    '-noenc',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '365',
    '-subj',
    subjectString(spec.subject),
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-addext',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    '-addext',
    `extendedKeyUsage=${eku}`,
  ]
  if (sans.length > 0) args.push('-addext', `subjectAltName=${sans.join(',')}`)
  await run('openssl', args)
  chmodSync(key, 0o600)
  return {cert, key}
}

export async function makeKeyPair(out: string): Promise<void> {
  // kubeadm's service-account signing key pair: sa.key + sa.pub
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${out}.key`])
  chmodSync(`${out}.key`, 0o600)
  await run('openssl', ['pkey', '-in', `${out}.key`, '-pubout', '-out', `${out}.pub`])
}

export function copySecret(from: string, to: string): void {
  mkdirSync(path.dirname(to), {recursive: true})
  copyFileSync(from, to)
  chmodSync(to, from.endsWith('.key') || from.endsWith('.csv') ? 0o600 : 0o644)
}

export function writeSecretFile(file: string, content: string): void {
  mkdirSync(path.dirname(file), {recursive: true})
  writeFileSync(file, content, {mode: 0o600})
  chmodSync(file, 0o600)
}
