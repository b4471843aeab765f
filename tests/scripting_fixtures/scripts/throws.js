const n = context.n;
if (n < 0) {
  throw new Error("reading " + n + " is negative");
}
result = n;
