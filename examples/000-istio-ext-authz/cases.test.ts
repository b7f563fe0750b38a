import { fileURLToPath } from 'node:url'
import { describeCaseFile } from '@verdict/core/testing'

await describeCaseFile(fileURLToPath(new URL('./cases.yaml', import.meta.url)))
