// Every way out a script might try; each outcome is reported, none may succeed.
const tried = {};
function attempt(name, f) {
  try {
    tried[name] = "got " + String(f());
  } catch (e) {
    tried[name] = "refused: " + e.name;
  }
}
attempt("require", () => require("fs").writeFileSync(context.canary, "x"));
attempt("process", () => process.env.NAFTIKO_TEST_SECRET);
attempt("fetch", () => fetch(context.listener));
attempt("constructor", () => (function () {}).constructor("return process")().env.NAFTIKO_TEST_SECRET);
attempt("globalThis", () => globalThis.process.env.NAFTIKO_TEST_SECRET);
attempt("timer", () => setTimeout(() => 0, 1));
attempt("webassembly", () => WebAssembly.Module);
attempt("deno", () => Deno.env.get("NAFTIKO_TEST_SECRET"));
attempt("leave-global", () => { globalThis.leftBehind = 1; return globalThis.leftBehind; });
attempt("leave-prototype", () => { Array.prototype.leftBehind = 1; return [].leftBehind; });
attempt("xhr", () => new XMLHttpRequest());
result = tried;
