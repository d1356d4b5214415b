/**
 * The bundled Lisp as a language: each case runs the binary (-p prints the value of the
 * last expression of its argument) and compares with values computed here independently.
 */
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {buildFixture, run, type Built} from './build-runtime.js'

describe('bundled Lisp: language', function () {
  let b: Built
  before(function () {
    this.timeout(120_000)
    b = buildFixture('lisp', 'lisp')
  })
  after(() => b?.cleanup())

  /** Values printed by -p for each expression, in order; fails on a non-zero exit. */
  function values(...exprs: string[]): string[] {
    const r = run(b.exe, exprs.flatMap((e) => ['-p', e]))
    assert.equal(r.status, 0, r.stderr)
    return r.stdout.trimEnd().split('\n')
  }

  it('reads and prints integers, floats, strings with escapes, symbols, dotted pairs', () => {
    assert.deepEqual(values(
      '(quote (1 -2 3.5 "a\\"b\\\\c\\n" foo (x . y) (1 2 . 3) #t #f ()))',
      '9223372036854775807', '-9223372036854775808', '1e3', '"tab\\there"',
    ), ['(1 -2 3.5 "a\\"b\\\\c\\n" foo (x . y) (1 2 . 3) #t #f ())',
      '9223372036854775807', '-9223372036854775808', '1000.0', '"tab\\there"'])
  })

  it('does 64-bit integer and float arithmetic and reports overflow', () => {
    const big = 4611686018427387904n // 2^62: just past the immediate range
    assert.deepEqual(values(
      '(+ 4611686018427387903 1)', '(* 3037000499 3037000499)', '(- 7 10)', '(/ 12 4)', '(/ 1 4)',
      '(mod -7 3)', '(remainder -7 3)', '(quotient 17 5)', '(* 1.5 2)', '(< 1 2 3)', '(< 1 3 2)',
      '(= 2 2.0)', '(sqrt 16)',
    ), [String(big), String(3037000499n * 3037000499n), '-3', '3', '0.25', '2', '-1', '3', '3.0',
      '#t', '#f', '#t', '4.0'])
    const r = run(b.exe, ['-p', '(* 9223372036854775807 2)'])
    assert.equal(r.status, 1)
    assert.match(r.stderr, /integer overflow/)
  })

  it('closes over lexical environments', () => {
    assert.deepEqual(values(
      `(begin (define (make-counter)
                (let ((n 0)) (lambda () (set! n (+ n 1)) n)))
              (define a (make-counter)) (define c (make-counter))
              (a) (a) (c)
              (list (a) (c)))`,
      '(let ((x 1)) (let ((f (lambda () x))) (let ((x 2)) (f))))',
      '(let* ((x 2) (y (* x 3))) (list x y))',
      '(letrec ((ev? (lambda (n) (if (= n 0) #t (od? (- n 1))))) (od? (lambda (n) (if (= n 0) #f (ev? (- n 1)))))) (ev? 100))',
      '((lambda (a . rest) (list a rest)) 1 2 3)',
      '(apply + 1 2 (list 3 4))',
    ), ['(3 2)', '1', '(2 6)', '#t', '(1 (2 3))', '10'])
  })

  it('runs a 1,000,000-iteration tail-recursive loop in constant stack', () => {
    // 256 KiB of C stack: deep enough for the interpreter, far too small for 10^6 frames.
    const limit = 'ulimit -s 256'
    const loop = '(begin (define (count-to n acc) (if (= n 0) acc (count-to (- n 1) (+ acc 1)))) (count-to 1000000 0))'
    const named = '(let loop ((i 0) (s 0)) (cond ((= i 1000000) s) (else (loop (+ i 1) (+ s i)))))'
    const mutual = '(begin (define (ev? n) (if (= n 0) #t (od? (- n 1)))) (define (od? n) (and (not (= n 0)) (ev? (- n 1)))) (ev? 1000001))'
    const r = run(b.exe, ['-p', loop, '-p', named, '-p', mutual], {shell: limit})
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), ['1000000', String((999999 * 1000000) / 2), '#f'])
    // The same depth without tail calls must fail (and be caught, not crash): the limit bites.
    const deep = run(b.exe, ['-p', '(begin (define (f n) (if (= n 0) 0 (+ 1 (f (- n 1))))) (f 1000000))'], {shell: limit})
    assert.equal(deep.status, 1)
    assert.match(deep.stderr, /recursion too deep/)
  })

  it('expands defmacro with quasiquote, unquote and unquote-splicing', () => {
    assert.deepEqual(values(
      '`(1 ,(+ 1 1) ,@(list 3 4) 5)',
      '`(a `(b ,(c ,(+ 1 2))))',
      `(begin (defmacro my-unless (test . body) \`(if ,test #f (begin ,@body)))
              (list (my-unless #f 1 2) (my-unless #t 3)))`,
      `(begin (defmacro swap! (a b) (let ((tmp (gensym))) \`(let ((,tmp ,a)) (set! ,a ,b) (set! ,b ,tmp))))
              (define p 1) (define q 2) (swap! p q) (list p q))`,
      '(case (* 2 3) ((2 3 5 7) (quote prime)) ((1 4 6 8 9) (quote composite)) (else (quote big)))',
      '(do ((i 0 (+ i 1)) (acc (quote ()) (cons i acc))) ((= i 4) acc))',
    ), ['(1 2 3 4 5)', '(a (quasiquote (b (unquote (c 3)))))', '(2 #f)', '(2 1)',
      'composite', '(3 2 1 0)'])
  })

  it('keeps hash tables and association lists consistent with a reference map', () => {
    // 5000 string and integer keys, updates and removals; compared with a JS Map.
    const prog = `(begin
      (define h (make-hash-table))
      (do ((i 0 (+ i 1))) ((= i 5000))
        (hash-set! h i (* i i))
        (hash-set! h (string-append "k" (number->string i)) i))
      (do ((i 0 (+ i 3))) ((>= i 5000)) (hash-remove! h i))
      (hash-set! h 10 "ten")
      (hash-set! h (list 1 2) 'listkey)
      (list (hash-count h) (hash-ref h 10) (hash-ref h 11) (hash-ref h 12 'gone) (hash-ref h "k4999")
            (hash-ref h (list 1 2)) (hash-has-key? h 3) (length (hash-keys h))
            (assoc "b" '(("a" . 1) ("b" . 2))) (assq 'c '((a 1) (c 3)))))`
    const m = new Map<unknown, unknown>()
    for (let i = 0; i < 5000; i++) { m.set(i, i * i); m.set(`k${i}`, i) }
    for (let i = 0; i < 5000; i += 3) m.delete(i)
    m.set(10, 'ten')
    m.set('(1 2)', 'listkey')
    assert.deepEqual(values(prog), [`(${m.size} "ten" 121 gone 4999 listkey #f ${m.size} ("b" . 2) (c 3))`])
  })

  it('has the list, string and symbol primitives real programs need', () => {
    assert.deepEqual(values(
      '(list (car (quote (1 2))) (cdr (quote (1 2))) (length (quote (1 2 3))) (reverse (quote (1 2 3))) (append (quote (1)) (quote (2 3)) (quote (4))))',
      '(list (map + (quote (1 2)) (quote (10 20))) (filter odd? (iota 6)) (fold-left + 0 (iota 101)) (sort (quote (3 1 2)) <))',
      '(list (string-append "ab" "cd") (number->string 42) (symbol->string (quote xy)) (string->symbol "z") (substring "hello" 1 3) (string-length "hello"))',
      '(list (eq? (quote a) (quote a)) (equal? (list 1 "x") (list 1 "x")) (eq? "x" "x") (null? (quote ())) (pair? 1) (number? 1.5) (string? "s") (symbol? (quote s)))',
    ), ['(1 (2) 3 (3 2 1) (1 2 3 4))', '((11 22) (1 3 5) 5050 (1 2 3))',
      '("abcd" "42" "xy" z "el" 5)', '(#t #t #f #t #f #t #t #t)'])
  })

  it('raises errors that guard and catch intercept', () => {
    assert.deepEqual(values(
      '(guard (e (string-append "caught: " e)) (error "bad thing" 42 "x"))',
      '(catch (car 5))',
      '(guard (e (list (quote raised) e)) (raise (quote oops)))',
      '(guard (e 0) (+ 1 2))',
    ), ['"caught: bad thing 42 \\"x\\""', '(error . "car: not a pair: 5")', '(raised oops)', '3'])
  })

  it('recovers from errors in the REPL and keeps the definitions made before', () => {
    const input = '(define x 40)\n(car 1)\n(+ x\n   2)\n(undefined-function 3)\n(define (f) (error "inside" x))\n(f)\n"after"\n(display "ok")(newline)\n'
    const r = run(b.exe, [], {input})
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, '42\n"after"\nok\n')
    assert.deepEqual(r.stderr.trim().split('\n'), ['error: car: not a pair: 1',
      'error: unbound variable: undefined-function', 'error: inside 40'])
  })

  it('loads files (relative to the working directory) and reports errors in them', () => {
    writeFileSync(join(b.dir, 'lib.lisp'), '; a library\n(define (triple x) (* 3 x))\n(define loaded-value (triple 14))\n')
    writeFileSync(join(b.dir, 'bad.lisp'), '(define fine 1)\n(car (quote ()))\n(define never 2)\n')
    assert.deepEqual(values(`(begin (load "${join(b.dir, 'lib.lisp')}") (list loaded-value (triple 5)))`), ['(42 15)'])
    const r = run(b.exe, ['lib.lisp', '-p', '(triple 7)', 'bad.lisp', '-p', '"not reached"'], {cwd: b.dir})
    assert.equal(r.status, 1)
    assert.equal(r.stdout, '21\n')
    assert.match(r.stderr, /car: not a pair: \(\)/)
    assert.deepEqual(values(`(guard (e (list fine (quote never-defined))) (load "${join(b.dir, 'bad.lisp')}"))`), ['(1 never-defined)'])
  })

  it('reports syntax errors without crashing', () => {
    const r = run(b.exe, ['-p', '(+ 1 2'])
    assert.equal(r.status, 1)
    assert.match(r.stderr, /end of input/)
    const u = run(b.exe, ['-p', '"abc'])
    assert.equal(u.status, 1)
    assert.match(u.stderr, /unterminated string/)
  })
})
