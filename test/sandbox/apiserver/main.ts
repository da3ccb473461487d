/**
 * The API server stand-in's entry point: `tsx test/sandbox/apiserver/main.ts <kube-apiserver flags>`.
 * Test infrastructure, never part of the plugin. Exits 1 with the apiserver's error text when the
 * configuration cannot be loaded (the kubelet then crash-loops it); stops cleanly on SIGTERM.
 */
import {startApiServer} from './app.js'
import {codecBackend} from './codec-backend.js'
import {parseFlags} from './flags.js'

function klogError(message: string): string {
  const now = new Date()
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  const stamp = `E${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())} ${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())}.${pad(now.getUTCMilliseconds() * 1000, 6)}`
  return `${stamp} ${String(process.pid).padStart(7)} run.go:72] "command failed" err=${JSON.stringify(message)}`
}

async function main(): Promise<void> {
  let running: Awaited<ReturnType<typeof startApiServer>>
  try {
    running = await startApiServer(parseFlags(process.argv.slice(2)), {backend: codecBackend})
  } catch (err) {
    process.stderr.write(`Error: ${(err as Error).message}\n${klogError((err as Error).message)}\n`)
    process.exit(1)
  }
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    const force = setTimeout(() => process.exit(0), 2000)
    force.unref()
    await running.close().catch(() => {})
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

void main()
