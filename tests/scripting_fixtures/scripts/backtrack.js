// One native call that never ends (catastrophic backtracking): only the timeout stops it.
result = /^(a+)+$/.test("a".repeat(40) + "b");
