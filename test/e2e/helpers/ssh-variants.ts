// Variants of the sandbox's ssh client config for failure tests: one node with a wrong pinned host
// key, one node on a port nothing listens on. The nodes themselves are not touched.
import {execFileSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {testTempDir} from '../../helpers/temp-dir.js'
import {sandbox} from './sandbox.js'

// Made inside the test that uses the config, and removed when it ends.
const dir = () => testTempDir('kubectl-encryption-ssh')

/** The config's `Host NAME` blocks, edited by `edit` for one node. */
function editBlock(config: string, node: string, edit: (block: string) => string): string {
  return config
    .split(/(?=^Host )/m)
    .map((block) => (block.startsWith(`Host ${node}\n`) ? edit(block) : block))
    .join('')
}

/** An ssh config whose known_hosts pins a different host key for `node` (as after a reinstall or an attack). */
export function configWithWrongHostKey(node: string): string {
  const d = dir()
  const config = readFileSync(sandbox().env.SANDBOX_SSH_CONFIG!, 'utf8')
  const knownHosts = /UserKnownHostsFile (\S+)/.exec(config)?.[1] as string
  const block = config.split(/(?=^Host )/m).find((b) => b.startsWith(`Host ${node}\n`)) ?? ''
  const ip = /HostName (\S+)/.exec(block)?.[1] as string
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'impostor')])
  const impostor = readFileSync(join(d, 'impostor.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
  const lines = readFileSync(knownHosts, 'utf8')
    .split('\n')
    .map((line) =>
      line.startsWith(`${ip} `) || line.startsWith(`[${ip}]:`) ? `${line.split(' ')[0]} ${impostor}` : line,
    )
  writeFileSync(join(d, 'known_hosts'), lines.join('\n'))
  writeFileSync(join(d, 'config'), config.replaceAll(knownHosts, join(d, 'known_hosts')))
  return join(d, 'config')
}

/** An ssh config that sends `node` to a port where nothing listens (connection refused). */
export function configWithUnreachableNode(node: string): string {
  const d = dir()
  const config = readFileSync(sandbox().env.SANDBOX_SSH_CONFIG!, 'utf8')
  writeFileSync(
    join(d, 'config'),
    editBlock(config, node, (b) => b.replace(/^ {2}Port \d+$/m, '  Port 9')),
  )
  return join(d, 'config')
}
