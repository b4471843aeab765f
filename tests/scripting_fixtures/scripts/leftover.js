// What an earlier call may have left behind (escape.js tries to): nothing.
result = { global: typeof globalThis.leftBehind, prototype: typeof [].leftBehind };
