import express from 'express'

const app = express()
app.get('/', (_req, res) => { res.send('Hello from a reproducible image\n') })
app.listen(3000)
