// Imported first by each benchmark: the node's modules log at info, and some create their
// logger as they load, so the level is set before any of them is evaluated.
// NEKO_LOG_LEVEL=info (or debug) in the environment still shows everything.
process.env.NEKO_LOG_LEVEL ??= 'warn'
