// Real OpenSSH per node: a login user with key-only login and passwordless sudo, one host key per
// node pinned in a known_hosts file, one sshd_config per node, and a client config (ssh -F) with one
// Host entry per node name.
import {execFile, execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync} from 'node:fs'
import path from 'node:path'
import {promisify} from 'node:util'
import type {NodeLayout, SandboxLayout} from './layout.js'

const run = promisify(execFile)
const sudoersFile = '/etc/sudoers.d/kubectl-encryption-sandbox'

/** A second login user with the same key but no sudo rights, for "missing sudo" tests. */
export const UNPRIVILEGED_SSH_USER = 'kubeguest'

/** The login user exists and is not locked (sshd refuses locked accounts). */
function ensureUser(user: string): void {
  try {
    execFileSync('id', ['-u', user], {stdio: 'ignore'})
  } catch {
    execFileSync('useradd', ['--create-home', '--shell', '/bin/bash', user], {stdio: 'pipe'})
  }
  const status = execFileSync('passwd', ['-S', user], {encoding: 'utf8'}).split(/\s+/)[1]
  // 'L' = locked password: sshd (without PAM) then refuses even key logins. '*' means "no password".
  if (status === 'L') execFileSync('usermod', ['-p', '*', user])
}

/** The login user exists, is not locked (sshd refuses locked accounts) and may sudo without a password. */
export function ensureLoginUser(user: string): void {
  ensureUser(user)
  const line = `${user} ALL=(ALL) NOPASSWD: ALL\n`
  if (!existsSync(sudoersFile) || readFileSync(sudoersFile, 'utf8') !== line) {
    writeFileSync(`${sudoersFile}.tmp`, line, {mode: 0o440})
    execFileSync('visudo', ['-cqf', `${sudoersFile}.tmp`])
    execFileSync('mv', [`${sudoersFile}.tmp`, sudoersFile])
  }
}

async function keygen(file: string, comment: string): Promise<string> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file])
  return readFileSync(`${file}.pub`, 'utf8').trim()
}

export function sshdConfigPath(node: NodeLayout): string {
  return path.join(node.sshdDir, 'sshd_config')
}

export async function setUpSsh(layout: SandboxLayout): Promise<void> {
  mkdirSync(layout.sshDir, {recursive: true, mode: 0o755})
  mkdirSync('/run/sshd', {recursive: true, mode: 0o755}) // sshd's privilege-separation directory
  ensureLoginUser(layout.sshUser)
  ensureUser(UNPRIVILEGED_SSH_USER)
  const clientPub = await keygen(layout.clientKey, 'kubectl-encryption-sandbox')
  const authorizedKeys = path.join(layout.sshDir, 'authorized_keys')
  writeFileSync(authorizedKeys, `${clientPub}\n`, {mode: 0o644})
  const known: string[] = []
  await Promise.all(
    layout.nodes.map(async (node) => {
      mkdirSync(node.sshdDir, {recursive: true, mode: 0o700})
      const hostKey = path.join(node.sshdDir, 'ssh_host_ed25519_key')
      const pub = await keygen(hostKey, `root@${node.name}`)
      const [type, key] = pub.split(' ')
      const hostPattern = node.sshPort === 22 ? node.ip : `[${node.ip}]:${node.sshPort}`
      known.push(`${hostPattern} ${type} ${key}`)
      writeFileSync(sshdConfigPath(node), sshdConfig(layout, node, hostKey, authorizedKeys), {mode: 0o600})
    }),
  )
  writeFileSync(layout.knownHosts, `${known.sort().join('\n')}\n`, {mode: 0o644})
  writeFileSync(layout.sshConfig, clientConfig(layout), {mode: 0o644})
  chmodSync(layout.clientKey, 0o600)
}

// StrictModes is off because the state dir may sit under a world-writable parent (a clone in /tmp,
// as CI does), which StrictModes refuses for authorized_keys; login stays key-only.
function sshdConfig(layout: SandboxLayout, node: NodeLayout, hostKey: string, authorizedKeys: string): string {
  return `# sshd of sandbox node ${node.name}
ListenAddress ${node.ip}:${node.sshPort}
HostKey ${hostKey}
PidFile none
AuthorizedKeysFile ${authorizedKeys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers ${layout.sshUser} ${UNPRIVILEGED_SSH_USER}
UsePAM no
StrictModes no
X11Forwarding no
PrintMotd no
LogLevel INFO
Subsystem sftp internal-sftp
`
}

function clientConfig(layout: SandboxLayout): string {
  return layout.nodes
    .map(
      (node) => `Host ${node.name}
  HostName ${node.ip}
  Port ${node.sshPort}
  User ${layout.sshUser}
  IdentityFile ${layout.clientKey}
  IdentitiesOnly yes
  UserKnownHostsFile ${layout.knownHosts}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
  LogLevel ERROR
`,
    )
    .join('\n')
}
