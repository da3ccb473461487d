// Runs before each e2e file (vitest setupFiles): the file starts from the sandbox's baseline.
import {beforeAll} from 'vitest'
import {startFromBaseline} from './helpers/baseline.js'

beforeAll(startFromBaseline, 400_000)
