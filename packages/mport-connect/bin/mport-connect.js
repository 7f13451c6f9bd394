#!/usr/bin/env node
// The command, built from bin/mport-connect.ts at the top of the repository into dist/.
import '../dist/bin/mport-connect.js'
