import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createLineIndex } from '../../src/audit/lines.js'
import { commandName, parseShell } from '../../src/audit/shell.js'

const names = (src: string, newlines: 'separator' | 'space' = 'separator'): string[] =>
  parseShell(src, { newlines }).commands.map(c => c.words.map(w => w.text).join(' '))

describe('shell tokenizer', () => {
  it('splits && ; | || chains and keeps what ends each command', () => {
    const { commands } = parseShell('a 1 && b 2; c | d || e &')
    expect(commands.map(c => [commandName(c), c.next])).toEqual([['a', '&&'], ['b', ';'], ['c', '|'], ['d', '||'], ['e', '&']])
  })

  it('joins line continuations and keeps offsets pointing at the source', () => {
    const src = 'apt-get install \\\n    curl \\\n    wget'
    const { commands } = parseShell(src)
    expect(commands).toHaveLength(1)
    const wget = commands[0]?.words[3]
    expect(wget?.text).toBe('wget')
    expect(createLineIndex(src).position(wget?.start ?? 0)).toEqual({ line: 3, column: 5 })
  })

  it('removes quotes but keeps substitutions in the raw text', () => {
    const { commands } = parseShell(`echo "a b" 'c d' x\\ y "$(date +'%F')" \`id -u\``)
    expect(commands[0]?.words.map(w => w.text)).toEqual(['echo', 'a b', 'c d', 'x y', "$(date +'%F')", '`id -u`'])
  })

  it('reads a multi-line double-quoted -ldflags value with backquotes as one word', () => {
    const src = 'go build -ldflags "\n  -X \'a.date=`date -u +\'%Y\'`\'\n  -X a.b=c\n" main.go'
    const { commands, problems } = parseShell(src)
    expect(problems).toEqual([])
    expect(commands).toHaveLength(1)
    expect(commands[0]?.words.map(w => w.text).at(-1)).toBe('main.go')
  })

  it('records redirects and their targets, and skips heredoc bodies', () => {
    const { commands } = parseShell('cat > /etc/x <<EOF\napt-get install foo\nEOF\necho done 2>&1 >>log')
    expect(commands.map(c => commandName(c))).toEqual(['cat', 'echo'])
    expect(commands[0]?.redirects.map(r => [r.op, r.target.text])).toEqual([['>', '/etc/x'], ['<<', 'EOF']])
    expect(commands[1]?.redirects.map(r => [r.op, r.target.text])).toEqual([['>&', '1'], ['>>', 'log']])
  })

  it('strips assignments, reserved words and sudo/env wrappers before the command name', () => {
    const { commands } = parseShell('if true; then FOO=1 sudo -E env BAR=2 apt-get update; fi')
    const apt = commands.find(c => commandName(c) === 'apt-get')
    expect(apt?.assignments.map(a => a.text)).toEqual(['FOO=1', 'BAR=2'])
    expect(apt?.words.map(w => w.text)).toEqual(['apt-get', 'update'])
  })

  it('treats newlines as spaces and drops comment lines inside a Dockerfile RUN', () => {
    expect(names('set -eux; \\\n  # a comment\n  apt-get update; \\\n  echo hi', 'space')).toEqual(['set -eux', 'apt-get update', 'echo hi'])
    expect(names('a\nb # c\nd')).toEqual(['a', 'b', 'd'])
  })

  it('reads process substitution as one word, not as a redirect', () => {
    const { commands, problems } = parseShell('readarray -t arr < <( echo "$X" | perl -pe \'s|a|b|\' )\nbash <(curl -fsSL https://x)')
    expect(problems).toEqual([])
    expect(commands.map(c => commandName(c))).toEqual(['readarray', 'bash'])
    expect(commands[0]?.redirects[0]?.target.raw).toMatch(/^<\( echo/)
    expect(commands[1]?.words[1]?.raw).toBe('<(curl -fsSL https://x)')
  })

  it('reports an unterminated quote instead of guessing', () => {
    expect(parseShell('echo "abc').problems[0]?.message).toMatch(/unterminated double quote/)
    expect(parseShell("echo 'abc").problems[0]?.message).toMatch(/unterminated single quote/)
  })
})

describe('shell tokenizer properties', () => {
  it('never throws, and every word it returns lies inside the source with raw text equal to its slice', () => {
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom('a', ' ', '\n', '\\', '"', "'", '`', '$', '(', ')', '{', '}', '|', '&', ';', '<', '>', '#', '=', '-') , maxLength: 80 }), src => {
      const { commands } = parseShell(src)
      for (const c of commands) {
        for (const w of [...c.words, ...c.assignments, ...c.redirects.map(r => r.target)]) {
          expect(w.start).toBeGreaterThanOrEqual(0)
          expect(w.end).toBeLessThanOrEqual(src.length)
          expect(src.slice(w.start, w.end)).toBe(w.raw)
        }
      }
    }), { numRuns: 500 })
  })

  it('splits plain words joined by spaces and separators back into the same commands', () => {
    const word = fc.stringMatching(/^[a-z][a-z0-9._/-]{0,8}$/)
    const command = fc.array(word, { minLength: 1, maxLength: 5 }).filter(ws => !['if', 'then', 'else', 'elif', 'fi', 'do', 'done', 'while', 'until', 'time', 'case', 'esac', 'sudo', 'nohup', 'exec', 'command', 'builtin', 'eatmydata', 'env'].includes(ws[0] ?? ''))
    fc.assert(fc.property(fc.array(command, { minLength: 1, maxLength: 5 }), fc.constantFrom(' && ', '; ', ' | ', ' \\\n  ', '\n'), (cmds, sep) => {
      const src = cmds.map(ws => ws.join(' ')).join(sep === ' \\\n  ' ? ' && \\\n  ' : sep)
      expect(parseShell(src).commands.map(c => c.words.map(w => w.text))).toEqual(cmds)
    }), { numRuns: 300 })
  })

  it('reads the script of sh -c, with offsets into the file, and chains it after the sh command', () => {
    const src = "RUN x && bash -o pipefail -ec 'apt-get install -y curl | tee log' && echo done"
    const { commands, problems } = parseShell(src, { start: 4 })
    expect(problems).toEqual([])
    expect(commands.map(c => [commandName(c), c.next])).toEqual([['x', '&&'], ['bash', 'group'], ['apt-get', '|'], ['tee', '&&'], ['echo', 'end']])
    const curl = commands[2]?.words[3]
    expect(curl?.text).toBe('curl')
    expect(src.slice(curl?.start, curl?.end)).toBe('curl')
    expect(names('sh -c "npm install left-pad"')).toEqual(['sh -c npm install left-pad', 'npm install left-pad'])
    expect(names("sh -c 'sh -c \"sh -c true\"'")).toEqual(['sh -c sh -c "sh -c true"', 'sh -c sh -c true', 'sh -c true'])
  })

  it('leaves alone what it cannot read in place: escapes, mixed quoting, variables, other programs', () => {
    for (const src of ['sh -c "echo \\"x\\""', "sh -c 'a'b", 'sh -c "$CMD"x', 'sh -c $CMD', 'python -c "import os"', 'sh script.sh -c "x y"']) {
      expect(parseShell(src).commands, src).toHaveLength(1)
    }
    expect(names('bash -c "$(curl -fsSL https://x/i.sh)"')).toHaveLength(2)
  })
})
