#!/usr/bin/env node
// The `verdict` command. The program lives in ../dist (run `pnpm build` first in a checkout).
import { main } from '../dist/main.js'

process.exitCode = await main(process.argv)
