/**
 * Parity cases: `rego.parse_module`, one module per case, covering each construct of Rego v1
 * that verdict's parser knows, and modules both OPA and verdict refuse (undefined in both).
 */

/** The module source as a Rego string literal (JSON's escapes are Rego's; OPA refuses a raw BOM there). */
const pm = (src: string, file = 'p.rego') =>
  `rego.parse_module(${JSON.stringify(file)}, ${JSON.stringify(src).replaceAll('\ufeff', '\\ufeff')})`
/** A module `package a` with the given statements. */
const m = (...lines: string[]) => pm(`package a\n${lines.join('\n')}\n`)

/** Modules both sides parse, by construct. */
export const REGO_PARSE_MODULES: readonly string[] = [
  // package and imports
  'package a.b["c"]',
  'package data.x',
  'package a\nimport rego.v1\nimport data.x as y\nimport input.foo\nimport future.keywords.in\nimport future.keywords',
  'package a\nimport data\nimport input as i\nimport data["q"].r\nimport rego.v1 as r',
  'package a\np := 1\nimport data.late',
  // constants, =, :=, if, default, else
  'package a\nx := 1.0\ny = "s"\nz := [1e3, 1E+3, 1.0e-2, 100000000000000000000000, 1.50, -0, -0.0, 0e0, 12345678901234567890123.5e-3, - 1, -7]',
  'package a\ndefault allow := false\nallow if { input.x == 1; not input.y }\nelse := 3 if true',
  'package a\ndefault p = {"k": [1, null, true]}\ndefault q := {x | true}\ndefault f(x) := 1\ndefault r',
  'package a\np := 1 if { a } else if { b } else := 3\nq = 1 if a else = 2 if b else if c\nf(x) if x else := 2 if true',
  'package a\np := 1 if a\n\nelse := 2',
  'package a\np if { a } { b }',
  'package a\np := 1 q := 2',
  'package a\nz if true\nw if {\n}\nq if {} else := 1',
  'package a\ninput := 1\ndata.x := 2',
  // contains, functions, ref heads, partial objects
  'package a\np contains x if some x in [1, 2]\nf(a, b) := a + b * 2\na.b[x] := v if { x := "k"; v := 1 }\nq[x] if x := 1',
  'package a\np contains 1\np.q contains x if x := 1\na.b.c contains x if true\np[x] contains y if true',
  'package a\nv(x) = 1\nw(x) if x\ny(x)\nf(1, [a]) := a\ng(x, y) := x if { y }',
  'package a\nr.s = 3\nt[x] = 4 if x := 1\np[x] := 1\np.q := 1\np["q x"] := 1\np[1] := 2\np[[1]] := 1\np[x.y] := 1\np[f(x)] := 1',
  'package a\np.q if true\np.q.r := 1\np[x].q := 1\np["a"].b := 1\np.if := 1',
  'package a\na.b(x) := 1\na.b(x) if true\np[x](a) := 5 if true\np.q.r(a) = 5',
  'package a\ndefault p.q := 1\ndefault p[x] = 5\ndefault p.q.r\ndefault p.q(a)',
  'package a\np.q := 1 if a else := 2\np.q.r := 1 if a else := 2\nf(x) := 1 if true else := 2',
  // bodies
  'package a\np if {\n\tx := 1\n\ty := 2\n\n\tx < y\n}\nq if { a;\n b }\nr if { x := 1 +\n 2; y := 1\n- 2 }',
  'package a\np if { some x, y; some k, v in obj; some x in xs; some _ in xs; some [a, b] in z }',
  'package a\np if { every k, v in obj { k == v }; every x in xs { x }\n every _ in xs { true; false } }',
  'package a\np if { not a; not(a); not input.x == 1; not x := 1; not a with x as y }',
  'package a\np if { a with input as 1 with data.x.y as z; b with c[0] as d; some x in y with a as b }',
  'package a\np if { x := a\n[1] }\nq if { x := f\n(1) }',
  // terms
  'package a\np if { null; true; false; 0.5; 1.0e-2; x := "a\\n\\t\\"\\\\\\u00e9\\/\\ud83d\\ude00"; y := `raw\\n"x"`; z := `a\nb` }',
  'package a\np if { x := "\\ud83d" }',
  'package a\np if { _ = 1; a[_] = 2; [_, x] = [1, _] }\nf(_) := 1 if { _ }\nq[_] := 2\nr := input[_][_]',
  'package a\np if { f(x).y; a.b.c(1); x[0]; x["a b"][y]; input.a.b[c].d; a[f(x)]; f(x)[0]; f(x).y.z[0]; x[0](1); x.y(1).z }',
  'package a\np if { [1, 2][0]; {"a": 1}.a; input.in; input.if; x.not; input.true; input.package }',
  'package a\np if { x := input; data; y := [input, data]; f(input); input[0] }\nf(input) := 1',
  'package a\np if { x = {1, 2}; y = set(); y2 = set( ); z = {}; w = {"a": 1, 2: [3]}; v = []; s1 = set(1) }',
  'package a\np if { u = {x | x := 1}; t = [x | x := 1]; s = {k: v | k := 1; v := 2}; n = {y | y := {z | z := 1}}; c = [y | y := 1\n z := 2; w] }',
  'package a\np if { [a | b]; [1 | 2 | 3]; {a | b}; [a | b, c]; {a: b | c}; {a: 1 | 2, b: 3}; [a | b; c | d]; count([1 | true]) > 0 }',
  'package a\np if { x := {1,}; y := [1,]; z := {"a": 1,}; f(1,) }',
  'package a\np if { x := {"b": 1, "a": 2, y: 3, 1: 4, null: 0, true: 1, [1]: 2, "a": 5} }',
  'package a\np if { x := {3, 1, "a", y, [1], {}, null, 1, {1, 2}, {1}, [2], [1, 1], {"b": 1}, {"a": 2}, {"a": 1, "b": 0}} }',
  'package a\np if { x := {f(1), g(1), a.b, a[0], 1.5, "b", "B", x, y, [x | true], {x | true}, {x: 1 | true}} }',
  'package a\np if { x := {[1]: 2, [0]: 3, {"a": 1}: 4, {1}: 5, {2}: 0} }',
  // numbers ordered exactly in sets (not as doubles); a byte order mark skipped
  'package a\np := {12345678901234567891, 12345678901234567890, -15.1, -1.5e1, 1e-400, 0, 3}',
  '\ufeffpackage a\n# c\np := 1',
  // what follows `if {`: a body, or one literal when it is more than a set
  'package a\np if {x | true}\nq if {"k": 1}\nr if {1} == x\ns if {a}\nt if { {1} }\nu if {x: 1} == y\nv if {[1] | true}\nw if {1}',
  'package a\np if {} := false\nq if { a } == x\nr if {x | true}\nelse := 1',
  // comprehensions need a single term before |; otherwise | is `or`
  'package a\np := [1 + 2 | true]\nq := {1 <= k | true}\nr := {a + 1: b | true}\ns := {a: b + 1 | true}\nt := [_ | _, _]\nu := [(a + b) | true]\nv := [-1 | true]\nw := {{} : 1 | true}',
  // f() heads, _ arguments renamed in else heads and further bodies
  'package a\nf() if y\ng() := 1\ndefault h() := 1\np if { f() }',
  'package a\nf(_) if { _ } else := 2\ng(_, y, _) if { x } else := 1 if { _ } else := _\nh(_) := _ if { x } { y } { _ }\nk([_, x]) if { _ } else := _',
  'package a\np[_] := 1 if { x } { y }\nq := _ if { x } { y }\nr.s if z else = 3\nt[1] := 1 if a else := 2',
  'package a\np if { set() }\nq if set() == x\nr if x == set()\ns if not [1]\nt if not {x | true}\nu := x in{1}\nv := x in(y)',
  // operators and precedence
  'package a\np if { 1 + 2 * 3 - 4 / 5 % 6; a | b & c; a == b != c; a < b <= c > d >= e; (1 + 2) * 3; (x); x := (y) }',
  'package a\np if { x in xs; k, v in obj; x in xs in ys; x := 1 - -1; x := a-1; x := 1 -1; x := [1 -1]; a == b == c }',
  'package a\np if { x := y | z; a & b == c; 1 + 2 < 3 * 4; not x in y; x := 1 in y }',
  // comments (with the file name) and METADATA comments, which are only comments here
  'package a\n# comment\n# METADATA\n# title: foo\np := [_, _] if true # trailing "x"\n#',
  '  # lead\npackage a\np := "é" # cé\n# x\n\n\n# last',
  'package a\n# METADATA\n# : : not yaml\np := 1',
  'package a\np := 1 # c\r\nq := 2\r\n',
]

/** Modules both sides refuse: parse errors, undefined in OPA's non-strict eval. */
export const REGO_PARSE_ERRORS: readonly string[] = [
  '',
  'p := 1',
  'package a\npackage b',
  'package a[0]',
  'package a.b-c',
  'package a\nz',
  'package a\np[x]',
  'package a\np.q',
  'package a\np { true }',
  'package a\np := 1 { true }',
  'package a\nf(x) contains 1',
  'package a\ndefault p := input',
  'package a\ndefault p := 1 + 1',
  'package a\ndefault p if true',
  'package a\ndefault p contains 1',
  'package a\ndefault p.q',
  'package a\np contains x if { x := 1 } else := 2',
  'package a\np[x] := 1 if a else := 2',
  'package a\nif := 1',
  'package a\né := 1',
  'package a\nimport foo',
  'package a\nimport data.x[0]',
  'package a\nimport data.x as input',
  'package a\nimport future.keywords.foo',
  'package a\nimport rego.v2',
  'package a\nimport future',
  'package a\np if { -x }',
  'package a\np if { x := -(1) }',
  'package a\np if { .5 }',
  'package a\np if { 01 }',
  'package a\np if { 1. }',
  'package a\np if { 1e }',
  'package a\np if { 0x10 }',
  'package a\np if { 1a }',
  'package a\np if { a b }',
  'package a\np if { a [1] }',
  'package a\np if { f (x) }',
  'package a\np if { a .b }',
  'package a\np if { a. b }',
  'package a\np if { true; }',
  'package a\np if { ; true }',
  'package a\np if { x := y := 1 }',
  'package a\np if { a = b = c }',
  'package a\np if { "abc"[0] }',
  'package a\np if { f(x)(y) }',
  'package a\np if { not not a }',
  'package a\np if { x := not }',
  'package a\np if { some x.y }',
  'package a\np if { every x in xs { } }',
  'package a\np if { a with b as c with }',
  'package a\np if { x := [1,,] }',
  'package a\np if { x := "\\q" }',
  'package a\np if { x := "a\nb" }',
  'package a\np if { x := "a\tb" }',
  'package a\np if { x := `a\\`b` }',
  'package a\np if { x := "open',
  'package a\np if { x := [1, 2 }',
  'package a\np if { x := {"a": 1 }',
  'package a\np := 1; q := 2',
  'package a\np if { x := 1 } $',
  'package a\np if {a, b}',
  'package a\np if set()',
  'package a\np if not {1}',
  'package a\np if {1} with x as y',
  'package a\np if { a } else',
  'package a\np if {x} else := 1 else := 2',
  'package a\np if {x} else := 1 if {}',
  'package a\np.q[x] if z\nelse = 3',
  'package a\nf()',
  'package a\nq := []in[]',
  'package a\nq := x in.y',
  'package a\nr := {{1 <= k | some _}}',
]

export const REGO_PARSE_CASES: readonly string[] = [
  ...REGO_PARSE_MODULES.map((src) => pm(src)),
  ...REGO_PARSE_ERRORS.map((src) => pm(src)),
  // The file name goes into the comments' locations.
  pm('package a\n# c', 'dir/other name.rego'),
  m('p := 1'),
]
